// quiver query: search a collection of a data directory (BM25 over a text field, optionally with
// pseudo-relevance feedback and a calibrated cut-off from a pipeline file): in this process, by asking
// the `quiver serve` that owns the directory, or read-only beside it (--read-only).
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "cli/common.h"
#include "cli/registry.h"
#include "cli/remote.h"
#include "quiver/core/json.h"
#include "quiver/engine/owner.h"
#include "quiver/engine/store.h"
#include "quiver/pipeline/pipeline_file.h"
#include "quiver/server/json_codec.h"

namespace quiver::cli {
namespace {

struct QueryOptions {
    std::string data;
    std::string collection;
    std::string text;
    std::string field;
    std::size_t k = 10;
    bool as_json = false;
    bool read_only = false;
    std::string api_key;
    std::string prf;        // --prf rm3:fb_docs=10,... (pipeline/prf.h syntax)
    std::string pipeline;   // --pipeline FILE: its prf and cutoff
    double min_relevance_arg = -1.0;  // --min-relevance (< 0: not given)
    // Resolved from --prf / --pipeline.
    std::optional<pipeline::PrfSpec> prf_spec;
    std::optional<pipeline::CutoffConfig> cutoff;
    std::optional<double> min_relevance;
};

struct Hit {
    std::string id;
    double score = 0.0;
    json::Value document;  // {"id", stored fields...}
    std::optional<double> relevance;
    std::optional<std::uint32_t> chunk;  // a chunked field: the document's best chunk
};

// --prf wins over the pipeline file's prf; the cut-off comes from the pipeline file.
Status resolve_pipeline(QueryOptions& o) {
    if (!o.pipeline.empty()) {
        QUIVER_ASSIGN_OR_RETURN(auto config, pipeline::load_pipeline(o.pipeline));
        o.prf_spec = config.prf;
        o.cutoff = std::move(config.cutoff);
    }
    if (!o.prf.empty()) {
        QUIVER_ASSIGN_OR_RETURN(auto spec, pipeline::parse_prf(o.prf));
        o.prf_spec = spec;
    }
    if (o.min_relevance_arg >= 0.0) o.min_relevance = o.min_relevance_arg;
    if (o.min_relevance && !o.cutoff) {
        return invalid_argument("--min-relevance needs a calibrated cut-off: --pipeline FILE with a \"cutoff\" "
                                "(quiver eval --cutoff calibrated --save-pipeline FILE)");
    }
    return ok_status();
}

Result<std::string> default_field(const engine::Schema& schema, const std::string& given) {
    if (!given.empty()) return given;
    for (const auto& f : schema.fields) {
        if (f.type == engine::FieldType::kText && f.indexed) return f.name;
    }
    return invalid_argument("collection has no indexed text field; pass --field");
}

Result<std::vector<Hit>> search_local(engine::Collection& c, const QueryOptions& o) {
    QUIVER_ASSIGN_OR_RETURN(std::string field, default_field(c.schema(), o.field));
    engine::SearchRequest r;
    r.clauses.push_back(engine::QueryClause::of_text(field, o.text));
    r.clauses.back().prf = o.prf_spec;
    r.k = o.k;
    if (o.cutoff) r.cutoff = o.cutoff->model;
    r.min_relevance = o.min_relevance;
    QUIVER_ASSIGN_OR_RETURN(auto hits, c.search(r));
    std::vector<Hit> out;
    for (auto& h : hits) {
        out.push_back({h.id, h.score, server::document_to_json(c.schema(), h.document), h.relevance, h.chunk});
    }
    return out;
}

// Opens the collection without the writer lock; the owner's merges may remove a file between the
// MANIFEST read and its open, so a kNotFound is retried on the newer state.
Result<std::vector<Hit>> search_read_only(const QueryOptions& o) {
    if (!engine::valid_collection_name(o.collection)) return invalid_argument("invalid collection name");
    engine::CollectionOptions copts;
    copts.read_only = true;
    copts.background_merge = false;
    const std::string dir = o.data + "/" + o.collection;
    for (int attempt = 0;; ++attempt) {
        auto c = engine::Collection::open(dir, copts);
        if (c) return search_local(**c, o);
        if (c.error().code() != ErrorCode::kNotFound || attempt == 4) {
            return std::move(c).error().with_context("opening '" + dir + "' read-only");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

Result<std::vector<Hit>> search_remote(server::HttpClient& client, const QueryOptions& o) {
    std::string field = o.field;
    if (field.empty()) {
        QUIVER_ASSIGN_OR_RETURN(auto info, call(client, "GET", collection_path(o.collection)));
        const json::Value* schema = info.find("schema");
        if (schema == nullptr) return data_loss("server reply for '" + o.collection + "' has no schema");
        QUIVER_ASSIGN_OR_RETURN(auto s, server::schema_from_json(*schema));
        QUIVER_ASSIGN_OR_RETURN(field, default_field(s, ""));
    }
    json::Value body = json::Value::object();
    body.set("field", json::Value::string(field));
    body.set("text", json::Value::string(o.text));
    body.set("k", json::Value::number(static_cast<double>(o.k)));
    if (o.prf_spec) body.set("prf", pipeline::prf_to_json(*o.prf_spec));
    if (o.cutoff) body.set("cutoff", pipeline::cutoff_to_json(*o.cutoff));
    if (o.min_relevance) body.set("min_relevance", json::Value::number(*o.min_relevance));
    QUIVER_ASSIGN_OR_RETURN(auto reply, call(client, "POST", collection_path(o.collection) + "/search", json::dump(body)));
    const json::Value* hits = reply.find("hits");
    if (hits == nullptr || !hits->is_array()) return data_loss("server search reply has no hits array");
    std::vector<Hit> out;
    for (const auto& h : hits->as_array()) {
        const json::Value* id = h.find("id");
        const json::Value* score = h.find("score");
        if (id == nullptr || !id->is_string() || score == nullptr || !score->is_number()) {
            return data_loss("server search reply has a hit without id or score");
        }
        Hit hit{id->as_string(), score->as_number(), json::Value::object(), std::nullopt};
        if (const json::Value* rel = h.find("relevance"); rel != nullptr && rel->is_number()) hit.relevance = rel->as_number();
        if (const json::Value* ch = h.find("chunk"); ch != nullptr && ch->is_number() && ch->as_number() >= 0 &&
                                                     ch->as_number() < 4294967296.0) {
            hit.chunk = static_cast<std::uint32_t>(ch->as_number());
        }
        hit.document.set("id", json::Value::string(hit.id));
        if (const json::Value* fields = h.find("fields"); fields != nullptr && fields->is_object()) {
            for (const auto& [name, v] : fields->as_object()) hit.document.set(name, v);
        }
        out.push_back(std::move(hit));
    }
    return out;
}

void print(const std::vector<Hit>& hits, bool as_json) {
    json::Value arr = json::Value::array();
    for (std::size_t i = 0; i < hits.size(); ++i) {
        if (as_json) {
            json::Value h = json::Value::object();
            h.set("id", json::Value::string(hits[i].id));
            h.set("score", json::Value::number(hits[i].score));
            if (hits[i].relevance) h.set("relevance", json::Value::number(*hits[i].relevance));
            if (hits[i].chunk) h.set("chunk", json::Value::number(static_cast<double>(*hits[i].chunk)));
            h.set("document", hits[i].document);
            arr.as_array().push_back(std::move(h));
        } else {
            std::string preview;
            for (const auto& [name, v] : hits[i].document.as_object()) {
                if (name == "id" || !v.is_string() || preview.size() >= 80) continue;
                preview += (preview.empty() ? "" : " | ") + v.as_string().substr(0, 80 - preview.size());
            }
            if (hits[i].chunk) preview = "[chunk " + std::to_string(*hits[i].chunk) + "] " + preview;
            if (hits[i].relevance) {
                std::printf("%2zu  %-20s %9.4f  P=%.3f  %s\n", i + 1, hits[i].id.c_str(), hits[i].score, *hits[i].relevance,
                            preview.c_str());
            } else {
                std::printf("%2zu  %-20s %9.4f  %s\n", i + 1, hits[i].id.c_str(), hits[i].score, preview.c_str());
            }
        }
    }
    if (as_json) std::printf("%s\n", json::dump(arr, true).c_str());
}

Status run_query(QueryOptions& o) {
    QUIVER_TRY(resolve_pipeline(o));
    std::vector<Hit> hits;
    if (o.read_only) {
        QUIVER_ASSIGN_OR_RETURN(hits, search_read_only(o));
    } else {
        QUIVER_ASSIGN_OR_RETURN(auto remote, connect_to_owner(o.data, resolve_api_key(o.api_key),
                                                              ", or pass --read-only"));
        if (remote) {
            QUIVER_ASSIGN_OR_RETURN(hits, search_remote(*remote, o));
        } else {
            QUIVER_ASSIGN_OR_RETURN(auto owner, engine::DirectoryOwner::acquire(o.data, ""));
            engine::CollectionOptions copts;
            copts.background_merge = false;  // a short read: no merges
            QUIVER_ASSIGN_OR_RETURN(auto store, engine::Store::open(o.data, copts));
            QUIVER_ASSIGN_OR_RETURN(auto c, store->get(o.collection));
            QUIVER_ASSIGN_OR_RETURN(hits, search_local(*c, o));
        }
    }
    print(hits, o.as_json);
    return ok_status();
}

void add_query_command(CLI::App& app) {
    auto o = std::make_shared<QueryOptions>();
    auto* sub = app.add_subcommand("query", "Search a collection in a data directory (BM25 over a text field); "
                                            "asks the server when one owns the directory");
    sub->add_option("--data", o->data, "Data directory")->required();
    sub->add_option("--collection", o->collection, "Collection name")->required();
    sub->add_option("--text", o->text, "Query text")->required();
    sub->add_option("--field", o->field, "Text field (default: the first indexed one)");
    sub->add_option("-k,--k", o->k, "Results");
    sub->add_flag("--json", o->as_json, "JSON output");
    sub->add_flag("--read-only", o->read_only,
                  "Open the collection read-only in this process, beside a server or another owner (no lock, "
                  "no log writes, no merges; sees the state at open)");
    sub->add_option("--api-key", o->api_key, "API key of the server owning --data (default: $QUIVER_API_KEY)");
    sub->add_option("--prf", o->prf,
                    "Pseudo-relevance feedback as `quiver eval --prf`: rm3:fb_docs=10,fb_terms=10,weight=0.5 or "
                    "rocchio:fb_docs=10,fb_terms=10,alpha=1,beta=0.75");
    sub->add_option("--pipeline", o->pipeline,
                    "Pipeline file (quiver eval --save-pipeline): its prf, and its calibrated cut-off (hits below "
                    "the trained probability of relevance are dropped)");
    sub->add_option("--min-relevance", o->min_relevance_arg, "With a calibrated cut-off: the probability hits must reach");
    set_action(sub, [o] {
        auto st = run_query(*o);
        return st ? 0 : report("query", st.error());
    });
}

const CommandRegistrar kRegister{62, &add_query_command};

}  // namespace
}  // namespace quiver::cli
