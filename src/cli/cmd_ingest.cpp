// quiver ingest: load documents into a collection of an embedded data directory (no server).
#include <signal.h>

#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/engine/store.h"
#include "quiver/eval/dataset.h"
#include "quiver/server/json_codec.h"
#include "quiver/storage/file_format.h"

namespace quiver::cli {
namespace {

struct IngestOptions {
    std::string data;
    std::string collection;
    std::string input;
    std::string schema;
    std::size_t batch = 1000;
    bool no_optimize = false;
};

/// BEIR corpora: title and text stored, indexed together as "contents" (as `quiver eval` does).
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

Status flush_batch(engine::Collection& c, std::vector<engine::Document>& batch, ProgressBar& bar) {
    if (batch.empty()) return ok_status();
    const std::size_t n = batch.size();
    QUIVER_TRY(c.upsert(std::move(batch)));
    batch.clear();
    bar.add(n);
    return ok_status();
}

Status run_ingest(const IngestOptions& o) {
    if (o.batch == 0) return invalid_argument("--batch must be at least 1");
    ::signal(SIGXFSZ, SIG_IGN);  // an exceeded file-size limit fails the write (EFBIG) instead of killing us
    const bool beir = std::filesystem::is_directory(o.input);
    engine::CollectionOptions copts;
    copts.wal_sync = storage::WalSync::kEveryAppend;
    QUIVER_ASSIGN_OR_RETURN(auto store, engine::Store::open(o.data, copts));
    auto existing = store->get(o.collection);
    std::shared_ptr<engine::Collection> c;
    if (existing) {
        c = *existing;
    } else if (existing.error().code() != ErrorCode::kNotFound) {
        return existing.error();
    } else {
        engine::Schema schema;
        if (!o.schema.empty()) {
            QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(o.schema));
            auto v = json::parse(text);
            if (!v) return std::move(v).error().with_context(o.schema);
            QUIVER_ASSIGN_OR_RETURN(schema, server::schema_from_json(*v));
        } else if (beir) {
            schema = beir_schema();
        } else {
            return invalid_argument("collection '" + o.collection + "' does not exist: pass --schema FILE");
        }
        QUIVER_ASSIGN_OR_RETURN(c, store->create(o.collection, schema));
    }
    std::vector<engine::Document> batch;
    if (beir) {
        QUIVER_ASSIGN_OR_RETURN(auto docs, eval::load_beir_corpus(o.input + "/corpus.jsonl"));
        ProgressBar bar("ingesting", docs.size(), "docs");
        for (auto& d : docs) {
            engine::Document doc;
            doc.id = std::move(d.id);
            if (c->schema().find("title") != nullptr) doc.fields["title"] = std::move(d.title);
            if (c->schema().find("text") != nullptr) doc.fields["text"] = std::move(d.text);
            batch.push_back(std::move(doc));
            if (batch.size() == o.batch) QUIVER_TRY(flush_batch(*c, batch, bar));
        }
        QUIVER_TRY(flush_batch(*c, batch, bar));
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
            auto doc = server::document_from_json(c->schema(), *v);
            if (!doc) return std::move(doc).error().with_context(o.input + ":" + std::to_string(line_no));
            batch.push_back(std::move(doc).value());
            if (batch.size() == o.batch) QUIVER_TRY(flush_batch(*c, batch, bar));
        }
        QUIVER_TRY(flush_batch(*c, batch, bar));
        bar.finish();
    }
    QUIVER_TRY(o.no_optimize ? c->flush() : c->optimize());
    const auto st = c->stats();
    std::printf("%s: %zu documents in %zu segment(s)\n", o.collection.c_str(), st.documents, st.segments);
    return ok_status();
}

void add_ingest_command(CLI::App& app) {
    auto o = std::make_shared<IngestOptions>();
    auto* sub = app.add_subcommand("ingest", "Load documents (JSONL or a BEIR directory) into a collection");
    sub->add_option("--data", o->data, "Data directory")->required();
    sub->add_option("--collection", o->collection, "Collection name")->required();
    sub->add_option("--input", o->input, "docs.jsonl (one JSON document per line) or a BEIR directory")->required();
    sub->add_option("--schema", o->schema, "Schema JSON file, to create the collection (BEIR has a default)");
    sub->add_option("--batch", o->batch, "Documents per durable write");
    sub->add_flag("--no-optimize", o->no_optimize, "Do not merge into one segment at the end");
    set_action(sub, [o] {
        auto st = run_ingest(*o);
        return st ? 0 : report("ingest", st.error());
    });
}

const CommandRegistrar kRegister{61, &add_ingest_command};

}  // namespace
}  // namespace quiver::cli
