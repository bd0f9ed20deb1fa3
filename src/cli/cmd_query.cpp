// quiver query: search a collection of a data directory (BM25 over a text field): in this process, by
// asking the `quiver serve` that owns the directory, or read-only beside it (--read-only).
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
};

struct Hit {
    std::string id;
    double score = 0.0;
    json::Value document;  // {"id", stored fields...}
};

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
    r.k = o.k;
    QUIVER_ASSIGN_OR_RETURN(auto hits, c.search(r));
    std::vector<Hit> out;
    for (auto& h : hits) out.push_back({h.id, h.score, server::document_to_json(c.schema(), h.document)});
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
        Hit hit{id->as_string(), score->as_number(), json::Value::object()};
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
            h.set("document", hits[i].document);
            arr.as_array().push_back(std::move(h));
        } else {
            std::string preview;
            for (const auto& [name, v] : hits[i].document.as_object()) {
                if (name == "id" || !v.is_string() || preview.size() >= 80) continue;
                preview += (preview.empty() ? "" : " | ") + v.as_string().substr(0, 80 - preview.size());
            }
            std::printf("%2zu  %-20s %9.4f  %s\n", i + 1, hits[i].id.c_str(), hits[i].score, preview.c_str());
        }
    }
    if (as_json) std::printf("%s\n", json::dump(arr, true).c_str());
}

Status run_query(const QueryOptions& o) {
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
    set_action(sub, [o] {
        auto st = run_query(*o);
        return st ? 0 : report("query", st.error());
    });
}

const CommandRegistrar kRegister{62, &add_query_command};

}  // namespace
}  // namespace quiver::cli
