// quiver ingest: load documents into a collection of a data directory: in this process, or, when a
// `quiver serve` owns the directory, by posting the batches to that server.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/common.h"
#include "cli/remote.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/engine/owner.h"
#include "quiver/engine/store.h"
#include "quiver/eval/dataset.h"
#include "quiver/pipeline/chunking.h"
#include "quiver/server/json_codec.h"
#include "quiver/storage/file_format.h"

namespace quiver::cli {
namespace {

struct IngestOptions {
    std::string data;
    std::string collection;
    std::string input;
    std::string schema;
    std::string chunking;  // --chunking SPEC: the default test-collection schema's "contents" in chunks
    std::size_t batch = 1000;
    bool no_optimize = false;
    std::string api_key;
};

/// Test collections (BEIR, TREC, SMART): title and text stored, indexed together as "contents" (as `quiver eval` does).
engine::Schema beir_schema() {
    engine::Schema s;
    engine::FieldSpec title, text, contents;
    title.name = "title";
    title.indexed = false;
    text.name = "text";
    text.indexed = false;
    contents.name = "contents";
    contents.sources = {"title", "text"};
    s.fields = {title, text, contents};
    return s;
}

// Where batches go: the collection opened in this process, or the server that owns the directory.
struct Target {
    std::string name;
    engine::Schema schema;
    std::unique_ptr<engine::Store> store;  // closes its collections when destroyed
    std::shared_ptr<engine::Collection> local;
    std::optional<server::HttpClient> remote;
};

Result<engine::Schema> schema_for_new(const IngestOptions& o, bool beir) {
    if (!o.schema.empty()) {
        QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(o.schema));
        auto v = json::parse(text);
        if (!v) return std::move(v).error().with_context(o.schema);
        return server::schema_from_json(*v);
    }
    if (beir) {
        engine::Schema s = beir_schema();
        if (!o.chunking.empty()) {
            QUIVER_ASSIGN_OR_RETURN(s.fields.back().chunking, pipeline::parse_chunking(o.chunking));
        }
        return s;
    }
    return invalid_argument("collection '" + o.collection + "' does not exist: pass --schema FILE");
}

Status open_local(const IngestOptions& o, bool beir, Target& t) {
    engine::CollectionOptions copts;
    copts.wal_sync = storage::WalSync::kEveryAppend;
    QUIVER_ASSIGN_OR_RETURN(t.store, engine::Store::open(o.data, copts));
    auto existing = t.store->get(o.collection);
    if (existing) {
        t.local = *existing;
    } else if (existing.error().code() != ErrorCode::kNotFound) {
        return existing.error();
    } else {
        QUIVER_ASSIGN_OR_RETURN(auto schema, schema_for_new(o, beir));
        QUIVER_ASSIGN_OR_RETURN(t.local, t.store->create(o.collection, schema));
    }
    t.schema = t.local->schema();
    return ok_status();
}

Status open_remote(const IngestOptions& o, bool beir, Target& t) {
    auto got = call(*t.remote, "GET", collection_path(o.collection));
    if (!got && got.error().code() != ErrorCode::kNotFound) return got.error();
    if (!got) {
        QUIVER_ASSIGN_OR_RETURN(t.schema, schema_for_new(o, beir));
        QUIVER_ASSIGN_OR_RETURN(auto created, call(*t.remote, "PUT", collection_path(o.collection),
                                                   json::dump(server::schema_to_json(t.schema))));
        (void)created;
        std::fprintf(stderr, "quiver ingest: created collection '%s' on %s\n", o.collection.c_str(),
                     t.remote->address().c_str());
        return ok_status();
    }
    const json::Value* schema = got->find("schema");
    if (schema == nullptr) return data_loss("server reply for '" + o.collection + "' has no schema");
    QUIVER_ASSIGN_OR_RETURN(t.schema, server::schema_from_json(*schema));
    return ok_status();
}

Status flush_batch(Target& t, std::vector<engine::Document>& batch, ProgressBar& bar) {
    if (batch.empty()) return ok_status();
    const std::size_t n = batch.size();
    if (t.local) {
        QUIVER_TRY(t.local->upsert(std::move(batch)));
    } else {
        json::Value arr = json::Value::array();
        for (const auto& d : batch) arr.as_array().push_back(server::document_to_json(t.schema, d));
        QUIVER_TRY(call(*t.remote, "POST", collection_path(t.name) + "/documents", json::dump(arr)));
    }
    batch.clear();
    bar.add(n);
    return ok_status();
}

Status run_ingest(const IngestOptions& o) {
    if (o.batch == 0) return invalid_argument("--batch must be at least 1");
    if (!o.chunking.empty() && !o.schema.empty()) {
        return invalid_argument("--chunking applies to the default test-collection schema; with --schema give the "
                                "field's \"chunking\" in the schema file");
    }
    if (!o.chunking.empty()) QUIVER_TRY(pipeline::parse_chunking(o.chunking));
    ::signal(SIGXFSZ, SIG_IGN);  // an exceeded file-size limit fails the write (EFBIG) instead of killing us
    const bool beir = std::filesystem::is_directory(o.input);
    Target t;
    t.name = o.collection;
    // A server owning the directory takes the documents over HTTP; otherwise this process owns it.
    std::optional<engine::DirectoryOwner> owner;
    QUIVER_ASSIGN_OR_RETURN(t.remote, connect_to_owner(o.data, resolve_api_key(o.api_key), ""));
    if (t.remote) {
        std::fprintf(stderr, "quiver ingest: '%s' is served by %s; sending the documents there\n", o.data.c_str(),
                     t.remote->address().c_str());
        QUIVER_TRY(open_remote(o, beir, t));
    } else {
        QUIVER_ASSIGN_OR_RETURN(auto own, engine::DirectoryOwner::acquire(o.data, ""));
        owner.emplace(std::move(own));
        QUIVER_TRY(open_local(o, beir, t));
    }
    std::vector<engine::Document> batch;
    if (beir) {
        // Any layout `quiver eval` reads (BEIR, TREC, SMART), detected by content.
        QUIVER_ASSIGN_OR_RETURN(auto corpus, eval::load_corpus(o.input));
        auto& docs = corpus.documents;
        ProgressBar bar("ingesting", docs.size(), "docs");
        for (auto& d : docs) {
            // BEIR metadata members land in the fields a --schema declares with their names (typed
            // as any JSON document's fields); the others are not stored.
            json::Value v = json::Value::object();
            v.set("id", json::Value::string(d.id));
            if (t.schema.find("title") != nullptr) v.set("title", json::Value::string(std::move(d.title)));
            if (t.schema.find("text") != nullptr) v.set("text", json::Value::string(std::move(d.text)));
            if (d.metadata.is_object()) {
                for (auto& [key, value] : d.metadata.as_object()) {
                    if (key != "title" && key != "text" && key != "id" && t.schema.find(key) != nullptr) {
                        v.set(key, std::move(value));
                    }
                }
            }
            auto parsed = server::document_from_json(t.schema, v);
            if (!parsed) return std::move(parsed).error().with_context(o.input);
            engine::Document doc = std::move(parsed).value();
            batch.push_back(std::move(doc));
            if (batch.size() == o.batch) QUIVER_TRY(flush_batch(t, batch, bar));
        }
        QUIVER_TRY(flush_batch(t, batch, bar));
        bar.finish();
    } else {
        QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(o.input));
        std::size_t lines = 0;
        for (char ch : text) lines += ch == '\n' ? 1 : 0;
        ProgressBar bar("ingesting", lines, "docs");
        std::size_t pos = 0, line_no = 0;
        while (pos < text.size()) {
            std::size_t end = text.find('\n', pos);
            if (end == std::string::npos) end = text.size();
            ++line_no;
            std::string_view line(text.data() + pos, end - pos);
            pos = end + 1;
            if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
            auto v = json::parse(line);
            if (!v) return std::move(v).error().with_context(o.input + ":" + std::to_string(line_no));
            auto doc = server::document_from_json(t.schema, *v);
            if (!doc) return std::move(doc).error().with_context(o.input + ":" + std::to_string(line_no));
            batch.push_back(std::move(doc).value());
            if (batch.size() == o.batch) QUIVER_TRY(flush_batch(t, batch, bar));
        }
        QUIVER_TRY(flush_batch(t, batch, bar));
        bar.finish();
    }
    std::size_t documents = 0, segments = 0;
    if (t.local) {
        QUIVER_TRY(o.no_optimize ? t.local->flush() : t.local->optimize());
        const auto st = t.local->stats();
        documents = st.documents;
        segments = st.segments;
    } else {
        QUIVER_TRY(call(*t.remote, "POST", collection_path(t.name) + (o.no_optimize ? "/flush" : "/optimize"), "{}"));
        QUIVER_ASSIGN_OR_RETURN(auto info, call(*t.remote, "GET", collection_path(t.name)));
        if (const auto* st = info.find("stats"); st != nullptr) {
            if (const auto* d = st->find("documents"); d != nullptr && d->is_number()) {
                documents = static_cast<std::size_t>(d->as_number());
            }
            if (const auto* g = st->find("segments"); g != nullptr && g->is_number()) {
                segments = static_cast<std::size_t>(g->as_number());
            }
        }
    }
    std::printf("%s: %zu documents in %zu segment(s)\n", o.collection.c_str(), documents, segments);
    return ok_status();
}

void add_ingest_command(CLI::App& app) {
    auto o = std::make_shared<IngestOptions>();
    auto* sub = app.add_subcommand("ingest", "Load documents (JSONL, or a BEIR, TREC or SMART/Cranfield directory) into a collection");
    sub->add_option("--data", o->data, "Data directory")->required();
    sub->add_option("--collection", o->collection, "Collection name")->required();
    sub->add_option("--input", o->input, "docs.jsonl (one JSON document per line) or a test-collection directory (BEIR, TREC, SMART)")->required();
    sub->add_option("--schema", o->schema, "Schema JSON file, to create the collection (BEIR has a default)");
    sub->add_option("--chunking", o->chunking,
                    "Test collections without --schema: index \"contents\" in chunks, as eval --chunking "
                    "(tokens:size=128,overlap=32,aggregate=maxp|firstp|sump,situated=1,context=16)");
    sub->add_option("--batch", o->batch, "Documents per durable write");
    sub->add_flag("--no-optimize", o->no_optimize, "Do not merge into one segment at the end");
    sub->add_option("--api-key", o->api_key, "API key of the server owning --data (default: $QUIVER_API_KEY)");
    set_action(sub, [o] {
        auto st = run_ingest(*o);
        return st ? 0 : report("ingest", st.error());
    });
}

const CommandRegistrar kRegister{61, &add_ingest_command};

}  // namespace
}  // namespace quiver::cli
