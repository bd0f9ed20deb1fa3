// Pipeline files (see pipeline_file.h).
#include "quiver/pipeline/pipeline_file.h"

#include <fmt/format.h>

#include <cmath>
#include <initializer_list>

#include "quiver/storage/file_format.h"

namespace quiver::pipeline {
namespace {

Status only_keys(const json::Value& v, std::initializer_list<std::string_view> keys, std::string_view what) {
    for (const auto& [key, val] : v.as_object()) {
        bool known = false;
        for (std::string_view k : keys) known = known || key == k;
        if (!known) return invalid_argument(fmt::format("{}: unknown member \"{}\"", what, key));
    }
    return ok_status();
}

Result<std::string> string_member(const json::Value& v, std::string_view key, std::string_view what) {
    const json::Value* m = v.find(key);
    if (m == nullptr) return std::string();
    if (!m->is_string()) return invalid_argument(fmt::format("{}: \"{}\" must be a string", what, key));
    return m->as_string();
}

}  // namespace

Result<FusionSpec> fusion_from_json(const json::Value& v) {
    if (!v.is_object()) return invalid_argument("\"fusion\" must be an object");
    QUIVER_TRY(only_keys(v, {"method", "normalization", "missing", "k", "weights"}, "\"fusion\""));
    FusionSpec spec;
    QUIVER_ASSIGN_OR_RETURN(const std::string method, string_member(v, "method", "\"fusion\""));
    if (!method.empty()) { QUIVER_ASSIGN_OR_RETURN(spec.method, parse_fusion_method(method)); }
    QUIVER_ASSIGN_OR_RETURN(const std::string norm, string_member(v, "normalization", "\"fusion\""));
    if (!norm.empty()) { QUIVER_ASSIGN_OR_RETURN(spec.normalization, parse_normalization(norm)); }
    QUIVER_ASSIGN_OR_RETURN(const std::string missing, string_member(v, "missing", "\"fusion\""));
    if (!missing.empty()) { QUIVER_ASSIGN_OR_RETURN(spec.missing, parse_missing_score(missing)); }
    if (const json::Value* k = v.find("k")) {
        if (!k->is_number() || !std::isfinite(k->as_number()) || k->as_number() < 0.0) {
            return invalid_argument("\"fusion\": \"k\" must be a finite number >= 0");
        }
        spec.rrf_k = k->as_number();
    }
    if (const json::Value* w = v.find("weights")) {
        if (!w->is_array()) return invalid_argument("\"fusion\": \"weights\" must be an array of numbers");
        for (const json::Value& x : w->as_array()) {
            if (!x.is_number() || !std::isfinite(x.as_number()) || x.as_number() < 0.0) {
                return invalid_argument("\"fusion\": \"weights\" must be finite numbers >= 0");
            }
            spec.weights.push_back(x.as_number());
        }
    }
    return spec;
}

json::Value fusion_to_json(const FusionSpec& spec) {
    json::Value v = json::Value::object();
    v.set("method", json::Value::string(std::string(to_string(spec.method))));
    if (spec.method == FusionMethod::kRrf) {
        v.set("k", json::Value::number(spec.rrf_k));
    } else {
        v.set("normalization", json::Value::string(std::string(to_string(spec.normalization))));
        v.set("missing", json::Value::string(std::string(to_string(spec.missing))));
    }
    if (!spec.weights.empty()) {
        json::Value w = json::Value::array();
        for (double x : spec.weights) w.as_array().push_back(json::Value::number(x));
        v.set("weights", std::move(w));
    }
    return v;
}

Result<PipelineConfig> pipeline_from_json(const json::Value& v) {
    if (!v.is_object()) return invalid_argument("a pipeline file must hold a JSON object");
    QUIVER_TRY(only_keys(v, {"format", "version", "fusion", "tuned"}, "pipeline"));
    QUIVER_ASSIGN_OR_RETURN(const std::string format, string_member(v, "format", "pipeline"));
    if (format != "quiver-pipeline") return invalid_argument("pipeline: \"format\" must be \"quiver-pipeline\"");
    const json::Value* version = v.find("version");
    if (version == nullptr || !version->is_number() || !version->is_integer()) {
        return invalid_argument("pipeline: \"version\" must be an integer");
    }
    if (version->as_int() != 1) {
        return failed_precondition(fmt::format("pipeline format version {} is not supported (this build reads 1)",
                                               version->as_int()));
    }
    PipelineConfig config;
    if (const json::Value* f = v.find("fusion")) { QUIVER_ASSIGN_OR_RETURN(config.fusion, fusion_from_json(*f)); }
    if (const json::Value* t = v.find("tuned")) {
        if (!t->is_object()) return invalid_argument("pipeline: \"tuned\" must be an object");
        QUIVER_TRY(only_keys(*t, {"split", "metric", "value", "sweep", "runs"}, "\"tuned\""));
        TuningRecord r;
        QUIVER_ASSIGN_OR_RETURN(r.split, string_member(*t, "split", "\"tuned\""));
        QUIVER_ASSIGN_OR_RETURN(r.metric, string_member(*t, "metric", "\"tuned\""));
        QUIVER_ASSIGN_OR_RETURN(r.sweep, string_member(*t, "sweep", "\"tuned\""));
        if (const json::Value* val = t->find("value")) {
            if (!val->is_number()) return invalid_argument("\"tuned\": \"value\" must be a number");
            r.value = val->as_number();
        }
        if (const json::Value* runs = t->find("runs")) {
            if (!runs->is_array()) return invalid_argument("\"tuned\": \"runs\" must be an array of strings");
            for (const json::Value& x : runs->as_array()) {
                if (!x.is_string()) return invalid_argument("\"tuned\": \"runs\" must be an array of strings");
                r.runs.push_back(x.as_string());
            }
        }
        config.tuned = std::move(r);
    }
    return config;
}

json::Value pipeline_to_json(const PipelineConfig& config) {
    json::Value v = json::Value::object();
    v.set("format", json::Value::string("quiver-pipeline"));
    v.set("version", json::Value::number(1));
    v.set("fusion", fusion_to_json(config.fusion));
    if (config.tuned) {
        json::Value t = json::Value::object();
        t.set("split", json::Value::string(config.tuned->split));
        t.set("metric", json::Value::string(config.tuned->metric));
        t.set("value", json::Value::number(config.tuned->value));
        t.set("sweep", json::Value::string(config.tuned->sweep));
        json::Value runs = json::Value::array();
        for (const auto& r : config.tuned->runs) runs.as_array().push_back(json::Value::string(r));
        t.set("runs", std::move(runs));
        v.set("tuned", std::move(t));
    }
    return v;
}

Result<PipelineConfig> load_pipeline(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    auto v = json::parse(text);
    if (!v) return std::move(v).error().with_context(path);
    auto config = pipeline_from_json(*v);
    if (!config) return std::move(config).error().with_context(path);
    return config;
}

}  // namespace quiver::pipeline
