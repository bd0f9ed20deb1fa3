// quiver query: search a collection of an embedded data directory (no server).
#include <cstdio>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
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
};

Status run_query(const QueryOptions& o) {
    engine::CollectionOptions copts;
    copts.background_merge = false;  // read-only use: no merges
    QUIVER_ASSIGN_OR_RETURN(auto store, engine::Store::open(o.data, copts));
    QUIVER_ASSIGN_OR_RETURN(auto c, store->get(o.collection));
    std::string field = o.field;
    if (field.empty()) {
        for (const auto& f : c->schema().fields) {
            if (f.type == engine::FieldType::kText && f.indexed) {
                field = f.name;
                break;
            }
        }
        if (field.empty()) return invalid_argument("collection has no indexed text field; pass --field");
    }
    engine::SearchRequest r;
    r.clauses.push_back(engine::QueryClause::of_text(field, o.text));
    r.k = o.k;
    QUIVER_ASSIGN_OR_RETURN(auto hits, c->search(r));
    json::Value arr = json::Value::array();
    for (std::size_t i = 0; i < hits.size(); ++i) {
        if (o.as_json) {
            json::Value h = json::Value::object();
            h.set("id", json::Value::string(hits[i].id));
            h.set("score", json::Value::number(hits[i].score));
            h.set("document", server::document_to_json(c->schema(), hits[i].document));
            arr.as_array().push_back(std::move(h));
        } else {
            std::string preview;
            for (const auto& [name, v] : hits[i].document.fields) {
                if (const auto* s = std::get_if<std::string>(&v); s != nullptr && preview.size() < 80) {
                    preview += (preview.empty() ? "" : " | ") + s->substr(0, 80 - preview.size());
                }
            }
            std::printf("%2zu  %-20s %9.4f  %s\n", i + 1, hits[i].id.c_str(), hits[i].score, preview.c_str());
        }
    }
    if (o.as_json) std::printf("%s\n", json::dump(arr, true).c_str());
    return ok_status();
}

void add_query_command(CLI::App& app) {
    auto o = std::make_shared<QueryOptions>();
    auto* sub = app.add_subcommand("query", "Search a collection in a data directory (BM25 over a text field)");
    sub->add_option("--data", o->data, "Data directory")->required();
    sub->add_option("--collection", o->collection, "Collection name")->required();
    sub->add_option("--text", o->text, "Query text")->required();
    sub->add_option("--field", o->field, "Text field (default: the first indexed one)");
    sub->add_option("-k,--k", o->k, "Results");
    sub->add_flag("--json", o->as_json, "JSON output");
    set_action(sub, [o] {
        auto st = run_query(*o);
        return st ? 0 : report("query", st.error());
    });
}

const CommandRegistrar kRegister{62, &add_query_command};

}  // namespace
}  // namespace quiver::cli
