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

Result<PrfSpec> prf_from_json(const json::Value& v, PrfMethod default_method) {
    if (!v.is_object()) return invalid_argument("\"prf\" must be an object");
    PrfSpec spec;
    spec.method = default_method;
    QUIVER_ASSIGN_OR_RETURN(const std::string method, string_member(v, "method", "\"prf\""));
    if (method == "rm3") {
        spec.method = PrfMethod::kRm3;
    } else if (method == "rocchio") {
        spec.method = PrfMethod::kRocchio;
    } else if (!method.empty() || v.find("method") != nullptr) {
        return invalid_argument("\"prf\": \"method\" must be \"rm3\" or \"rocchio\"");
    }
    if (spec.method == PrfMethod::kRm3) {
        QUIVER_TRY(only_keys(v, {"method", "fb_docs", "fb_terms", "original_query_weight"}, "\"prf\" (rm3)"));
    } else {
        QUIVER_TRY(only_keys(v, {"method", "fb_docs", "fb_terms", "alpha", "beta"}, "\"prf\" (rocchio)"));
    }
    for (const char* name : {"fb_docs", "fb_terms"}) {
        const json::Value* n = v.find(name);
        if (n == nullptr) continue;
        if (!n->is_number() || !n->is_integer() || n->as_number() < 1 || n->as_number() > 1000) {
            return invalid_argument(fmt::format("\"prf\": \"{}\" must be an integer 1..1000", name));
        }
        (std::string_view(name) == "fb_docs" ? spec.fb_docs : spec.fb_terms) = static_cast<std::size_t>(n->as_int());
    }
    for (const char* name : {"original_query_weight", "alpha", "beta"}) {
        const json::Value* n = v.find(name);
        if (n == nullptr) continue;
        if (!n->is_number() || !std::isfinite(n->as_number())) {
            return invalid_argument(fmt::format("\"prf\": \"{}\" must be a finite number", name));
        }
        const std::string_view nm = name;
        (nm == "original_query_weight" ? spec.weight : nm == "alpha" ? spec.alpha : spec.beta) = n->as_number();
    }
    QUIVER_TRY(validate_prf(spec));
    return spec;
}

json::Value prf_to_json(const PrfSpec& spec) {
    json::Value v = json::Value::object();
    v.set("method", json::Value::string(spec.method == PrfMethod::kRm3 ? "rm3" : "rocchio"));
    v.set("fb_docs", json::Value::number(static_cast<double>(spec.fb_docs)));
    v.set("fb_terms", json::Value::number(static_cast<double>(spec.fb_terms)));
    if (spec.method == PrfMethod::kRm3) {
        v.set("original_query_weight", json::Value::number(spec.weight));
    } else {
        v.set("alpha", json::Value::number(spec.alpha));
        v.set("beta", json::Value::number(spec.beta));
    }
    return v;
}

namespace {

constexpr std::size_t kCalibrationFeatures = 6;

Result<std::vector<double>> numbers_member(const json::Value& v, std::string_view key, bool positive) {
    const json::Value* m = v.find(key);
    if (m == nullptr || !m->is_array() || m->as_array().size() != kCalibrationFeatures) {
        return invalid_argument(fmt::format("\"cutoff\": \"{}\" must be an array of {} numbers", key, kCalibrationFeatures));
    }
    std::vector<double> out;
    for (const json::Value& x : m->as_array()) {
        if (!x.is_number() || !std::isfinite(x.as_number()) || (positive && !(x.as_number() > 0.0))) {
            return invalid_argument(fmt::format("\"cutoff\": \"{}\" must hold finite numbers{}", key,
                                                positive ? " > 0" : ""));
        }
        out.push_back(x.as_number());
    }
    return out;
}

json::Value numbers_json(const std::vector<double>& xs) {
    json::Value a = json::Value::array();
    for (double x : xs) a.as_array().push_back(json::Value::number(x));
    return a;
}

}  // namespace

Result<CutoffConfig> cutoff_from_json(const json::Value& v) {
    if (!v.is_object()) return invalid_argument("\"cutoff\" must be an object");
    QUIVER_TRY(only_keys(v, {"method", "depth", "threshold", "feature_mean", "feature_scale", "wa", "wb", "train_f1", "split"},
                         "\"cutoff\""));
    QUIVER_ASSIGN_OR_RETURN(const std::string method, string_member(v, "method", "\"cutoff\""));
    if (method != "calibrated") return invalid_argument("\"cutoff\": \"method\" must be \"calibrated\"");
    CutoffConfig c;
    const json::Value* depth = v.find("depth");
    if (depth == nullptr || !depth->is_number() || !depth->is_integer() || depth->as_number() < 1 ||
        depth->as_number() > 10000) {
        return invalid_argument("\"cutoff\": \"depth\" must be an integer 1..10000");
    }
    c.model.depth = static_cast<std::size_t>(depth->as_int());
    const json::Value* t = v.find("threshold");
    if (t == nullptr || !t->is_number() || !(t->as_number() >= 0.0 && t->as_number() <= 1.0)) {
        return invalid_argument("\"cutoff\": \"threshold\" must be a probability in [0, 1]");
    }
    c.model.threshold = t->as_number();
    QUIVER_ASSIGN_OR_RETURN(c.model.feature_mean, numbers_member(v, "feature_mean", false));
    QUIVER_ASSIGN_OR_RETURN(c.model.feature_scale, numbers_member(v, "feature_scale", true));
    QUIVER_ASSIGN_OR_RETURN(c.model.wa, numbers_member(v, "wa", false));
    QUIVER_ASSIGN_OR_RETURN(c.model.wb, numbers_member(v, "wb", false));
    if (const json::Value* f1 = v.find("train_f1")) {
        if (!f1->is_number()) return invalid_argument("\"cutoff\": \"train_f1\" must be a number");
        c.model.train_f1 = f1->as_number();
    }
    QUIVER_ASSIGN_OR_RETURN(c.split, string_member(v, "split", "\"cutoff\""));
    return c;
}

json::Value cutoff_to_json(const CutoffConfig& c) {
    json::Value v = json::Value::object();
    v.set("method", json::Value::string("calibrated"));
    v.set("depth", json::Value::number(static_cast<double>(c.model.depth)));
    v.set("threshold", json::Value::number(c.model.threshold));
    v.set("feature_mean", numbers_json(c.model.feature_mean));
    v.set("feature_scale", numbers_json(c.model.feature_scale));
    v.set("wa", numbers_json(c.model.wa));
    v.set("wb", numbers_json(c.model.wb));
    v.set("train_f1", json::Value::number(c.model.train_f1));
    if (!c.split.empty()) v.set("split", json::Value::string(c.split));
    return v;
}

Result<PipelineConfig> pipeline_from_json(const json::Value& v) {
    if (!v.is_object()) return invalid_argument("a pipeline file must hold a JSON object");
    QUIVER_TRY(only_keys(v, {"format", "version", "fusion", "prf", "cutoff", "tuned"}, "pipeline"));
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
    if (const json::Value* p = v.find("prf")) {
        QUIVER_ASSIGN_OR_RETURN(auto prf, prf_from_json(*p));
        config.prf = prf;
    }
    if (const json::Value* c = v.find("cutoff")) {
        QUIVER_ASSIGN_OR_RETURN(auto cutoff, cutoff_from_json(*c));
        config.cutoff = std::move(cutoff);
    }
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
    if (config.prf) v.set("prf", prf_to_json(*config.prf));
    if (config.cutoff) v.set("cutoff", cutoff_to_json(*config.cutoff));
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
