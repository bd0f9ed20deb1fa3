// quiver build: vectors file -> dense index file (flat or HNSW).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/index/code_index.h"
#include "quiver/engine/payload_index.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/index/memory_budget.h"
#include "quiver/server/json_codec.h"
#include "quiver/storage/vector_io.h"

namespace quiver::cli {
namespace {

struct BuildOptions {
    std::string input, output, kind = "dense", index_type = "hnsw", metric = "cosine", codec = "none", attributes;
    std::size_t m = 16, ef_construction = 200, threads = 0, max_rows = 0;
    std::size_t nlist = 0, nprobe = 0, train_rows = 0;
    std::uint64_t seed = 100;
    bool json = false;
    std::string memory_budget;     // empty: none
    bool index_type_given = false;  // --index-type on the command line (else the budget may pick)
};

/// --memory-budget's size (index::parse_byte_size), the option named in the error.
Result<std::uint64_t> parse_byte_size(const std::string& text) {
    auto bytes = index::parse_byte_size(text);
    if (!bytes) return invalid_argument("--memory-budget " + bytes.error().message());
    return bytes;
}

std::string mib(std::uint64_t bytes) { return fmt::format("{:.1f} MiB", double(bytes) / 1048576.0); }

Status run_build(const BuildOptions& given) {
    BuildOptions o = given;  // a memory budget fills in the index type, codec and nlist
    if (o.kind != "dense") {
        return invalid_argument(fmt::format("unknown --kind '{}' (dense, or sparse for `quiver sparse-build`)", o.kind));
    }
    QUIVER_ASSIGN_OR_RETURN(simd::Metric metric, simd::parse_metric(o.metric));
    if (o.index_type != "hnsw" && o.index_type != "flat" && o.index_type != "ivf") {
        return invalid_argument(fmt::format("unknown --index '{}' (expected hnsw, flat or ivf)", o.index_type));
    }
    std::optional<std::uint64_t> budget;
    if (!o.memory_budget.empty()) {
        QUIVER_ASSIGN_OR_RETURN(budget, parse_byte_size(o.memory_budget));
        if (o.codec != "none") return invalid_argument("--memory-budget picks the codec: drop --codec");
    }
    QUIVER_ASSIGN_OR_RETURN(index::CodecSpec codec, index::CodecSpec::parse(o.codec));
    if (o.index_type != "ivf" && o.nlist > 0) return invalid_argument("--nlist needs --index ivf");
    // Ids come from JSONL, or from the .ids file beside .npy/.fvecs (written by `quiver encode`).
    std::string ids_from;
    QUIVER_ASSIGN_OR_RETURN(storage::VectorSet set, read_vectors_with_ids(o.input, {.max_rows = o.max_rows}, &ids_from));
    const Matrix<float>& vectors = set.vectors;
    std::optional<index::BudgetChoice> choice;
    if (budget) {
        QUIVER_ASSIGN_OR_RETURN(choice, index::choose_for_budget({.budget_bytes = *budget,
                                                                  .rows = vectors.rows,
                                                                  .dim = vectors.dim,
                                                                  .metric = metric,
                                                                  .index_type = o.index_type_given ? o.index_type : "auto",
                                                                  .M = o.m,
                                                                  .nlist = o.nlist}));
        o.index_type = choice->index_type;
        codec = choice->codec;
        o.nlist = choice->nlist;
        std::fprintf(stderr, "memory budget %s: %s index%s%s, predicted resident %s (%.1f bytes per vector)\n",
                     mib(*budget).c_str(), choice->index_type.c_str(),
                     codec.kind == index::CodecKind::kNone ? " on float32 vectors in RAM"
                                                          : fmt::format(" on {} codes", codec.to_string()).c_str(),
                     choice->vectors_on_disk ? ", float32 vectors on disk for the rescore" : "",
                     mib(choice->predicted_bytes).c_str(), double(choice->predicted_bytes) / double(vectors.rows));
    }
    const bool on_codes = o.index_type == "ivf" || codec.kind != index::CodecKind::kNone;
    // HNSW walks one code per node (sq8, sq4, rabitq, binary; not fast-scan PQ): HnswIndex checks.
    // Attributes first: a bad file fails before the build.
    std::optional<engine::PayloadIndex> payload;
    if (!o.attributes.empty()) {
        QUIVER_ASSIGN_OR_RETURN(auto table, server::read_attributes_jsonl(o.attributes, o.max_rows));
        if (table.rows.size() != vectors.rows) {
            return invalid_argument(fmt::format("--attributes '{}' has {} rows, '{}' has {} vectors (one object per "
                                                "vector, same order)", o.attributes, table.rows.size(), o.input,
                                                vectors.rows));
        }
        payload = engine::PayloadIndex::build_fields(table.fields, table.rows);
    }
    std::unique_ptr<index::VectorIndex> idx;
    ProgressBar bar(fmt::format("building {}", o.index_type), vectors.rows, "vectors");
    if (o.index_type == "hnsw") {
        QUIVER_ASSIGN_OR_RETURN(auto h, index::HnswIndex::create(vectors.dim, metric,
                                                                 {.M = o.m,
                                                                  .ef_construction = o.ef_construction,
                                                                  .seed = o.seed,
                                                                  .threads = o.threads,
                                                                  .codec = codec}));
        h->set_progress(&bar);
        QUIVER_TRY(h->add(vectors, index::sequential_labels(vectors.rows)));
        h->set_progress(nullptr);
        idx = std::move(h);
    } else if (on_codes) {  // flat or IVF over codes
        // IVF default: about 4 * sqrt(n) lists, as FAISS suggests, at least one and at most n / 39 so the
        // coarse k-means has enough points per list.
        std::size_t nlist = o.nlist;
        if (o.index_type == "ivf" && nlist == 0) nlist = index::default_nlist(vectors.rows);
        QUIVER_ASSIGN_OR_RETURN(auto c, index::CodeIndex::create(vectors.dim, metric,
                                                                 {.codec = codec,
                                                                  .nlist = nlist,
                                                                  .nprobe = o.nprobe,
                                                                  .train_rows = o.train_rows,
                                                                  .seed = o.seed,
                                                                  .threads = o.threads}));
        QUIVER_TRY(c->add(vectors, index::sequential_labels(vectors.rows)));
        bar.add(vectors.rows);
        idx = std::move(c);
    } else {
        QUIVER_ASSIGN_OR_RETURN(auto f, index::FlatIndex::create(vectors.dim, metric));
        QUIVER_TRY(f->add(vectors, index::sequential_labels(vectors.rows)));
        bar.add(vectors.rows);
        idx = std::move(f);
    }
    bar.finish();
    const double build_seconds = bar.elapsed_seconds();
    // Row numbers are the labels; keep the file's own ids when it has them (JSONL, or an ids file).
    const bool has_ids = !set.ids.empty();
    if (has_ids) idx->set_external_ids(std::move(set.ids));
    QUIVER_TRY(idx->save(o.output));
    const std::string attributes_file = o.output + ".attrs";
    if (payload) {
        QUIVER_TRY(payload->save(attributes_file));
    } else {
        std::error_code rm;
        std::filesystem::remove(attributes_file, rm);  // a stale one would not describe this index
    }
    std::error_code ec;
    const auto file_bytes = std::filesystem::file_size(o.output, ec);
    const auto info = idx->info();
    // With a budget: the resident bytes of the file opened as it will be served (what `quiver info
    // --vectors-on-disk` reports), checked against the budget.
    std::uint64_t resident = 0;
    if (choice) {
        QUIVER_ASSIGN_OR_RETURN(auto served, index::open_index(o.output, {.vectors_on_disk = choice->vectors_on_disk,
                                                                          .verify = true}));
        resident = served->memory_bytes();
        if (resident > *budget) {
            return internal_error(fmt::format("the index built for the memory budget holds {} resident bytes, over the "
                                              "budget of {} (predicted {})", resident, *budget,
                                              choice->predicted_bytes));
        }
    }
    const std::string rescore_text =
        !choice ? "" : choice->rescore == index::SearchParams::kRescoreDefault ? "auto" : std::to_string(choice->rescore);
    if (o.json) {
        json::Value v = json::Value::object();
        v.set("index", json::Value::string(o.output));
        v.set("ids", has_ids ? json::Value::string(ids_from.empty() ? o.input : ids_from) : json::Value::null());
        v.set("kind", json::Value::string(info.kind));
        v.set("dim", json::Value::number(static_cast<double>(info.dim)));
        v.set("metric", json::Value::string(std::string(simd::to_string(info.metric))));
        v.set("vectors", json::Value::number(static_cast<double>(info.size)));
        v.set("build_seconds", json::Value::number(build_seconds));
        v.set("file_bytes", json::Value::number(static_cast<double>(file_bytes)));
        v.set("memory_bytes", json::Value::number(static_cast<double>(idx->memory_bytes())));
        if (const auto* c = dynamic_cast<const index::CodeIndex*>(idx.get())) {
            const auto f = c->footprint();
            v.set("codec", json::Value::string(c->params().codec.to_string()));
            v.set("nlist", json::Value::number(static_cast<double>(c->nlist())));
            v.set("resident_bytes_per_vector", json::Value::number(f.resident_per_vector()));
            v.set("float_bytes_per_vector",
                  json::Value::number(f.vectors > 0 ? double(f.float_bytes) / double(f.vectors) : 0.0));
        }
        v.set("attributes", payload ? json::Value::string(attributes_file) : json::Value::null());
        if (choice) {
            json::Value b = json::Value::object();
            b.set("budget_bytes", json::Value::number(static_cast<double>(*budget)));
            b.set("index", json::Value::string(choice->index_type));
            b.set("codec", json::Value::string(choice->codec.to_string()));
            b.set("nlist", json::Value::number(static_cast<double>(choice->nlist)));
            b.set("vectors_on_disk", json::Value::boolean(choice->vectors_on_disk));
            b.set("rescore", choice->rescore == index::SearchParams::kRescoreDefault
                                 ? json::Value::string("auto")
                                 : json::Value::number(static_cast<double>(choice->rescore)));
            b.set("predicted_resident_bytes", json::Value::number(static_cast<double>(choice->predicted_bytes)));
            b.set("resident_bytes", json::Value::number(static_cast<double>(resident)));
            v.set("memory_budget", std::move(b));
        }
        return write_text("-", json::dump(v, true) + "\n");
    }
    std::printf("built %s index of %zu x %zu (%s) in %.2fs -> %s (%.1f MiB)%s\n", info.kind.c_str(), info.size,
                info.dim, std::string(simd::to_string(info.metric)).c_str(), build_seconds, o.output.c_str(),
                static_cast<double>(file_bytes) / 1048576.0,
                !has_ids ? ", ids are row numbers"
                         : (ids_from.empty() ? ", ids from the input" : (", ids from " + ids_from).c_str()));
    if (payload) {
        std::printf("payload index of %zu attribute fields -> %s\n", payload->fields().size(), attributes_file.c_str());
    }
    if (choice) {
        std::printf("memory budget %s: resident %s (predicted %s); search with `quiver search --index-file %s%s%s`\n",
                    mib(*budget).c_str(), mib(resident).c_str(), mib(choice->predicted_bytes).c_str(), o.output.c_str(),
                    choice->vectors_on_disk ? " --vectors-on-disk" : "",
                    choice->rescore > 0 && rescore_text != "auto" ? (" --rescore " + rescore_text).c_str() : "");
    }
    return {};
}

void add_build_command(CLI::App& app) {
    auto o = std::make_shared<BuildOptions>();
    auto* sub = app.add_subcommand("build", "Build a dense vector index (HNSW or exact flat) from a vectors file");
    sub->footer(
        "Input formats: .fvecs .bvecs .ivecs (TEXMEX), .npy (float32/float64, 2-d, C order), .jsonl with\n"
        "{\"id\": \"doc1\", \"vector\": [...]} per line. Document ids come from the JSONL, or for .npy/.fvecs\n"
        "from the ids file beside it (base.npy -> base.ids, one id per line, as `quiver encode` writes);\n"
        "without either, row i is id i. Duplicate ids are an error. Ids are stored in the index and\n"
        "reported by `quiver search`. Cosine normalises vectors (zero vectors are rejected).\n"
        "Example: quiver build --input base.fvecs --output glove.qvr --metric cosine --m 16\n"
        "Compressed: quiver build -i base.fvecs -o sift.qvr --index ivf --codec sq8 --nlist 1024 --metric l2\n"
        "(codes in RAM, float32 vectors kept in the file for the rescore; see docs/codecs.md).\n"
        "Learned-sparse vectors: `quiver build --kind sparse ...` runs `quiver sparse-build` (see its --help).\n"
        "--attributes A.jsonl: one JSON object per vector (same order), e.g. {\"lang\": \"en\", \"year\": 2020};\n"
        "every member gets a payload index, written beside the index as <output>.attrs, for\n"
        "`quiver search --filter`.");
    sub->add_option("-i,--input", o->input, "Vectors to index")->required();
    sub->add_option("-o,--output", o->output, "Index file to write (replaced atomically)")->required();
    sub->add_option("--kind", o->kind, "Vector kind: dense (this command) or sparse (forwards to sparse-build)")
        ->capture_default_str();
    auto* index_type = sub->add_option("--index-type", o->index_type, "Index type: hnsw | flat | ivf")->capture_default_str();
    auto* codec = sub->add_option("--codec", o->codec,
                    "Vector codes (flat, ivf; hnsw walks sq8, sq4, rabitq or binary codes and re-scores in float32): none | sq8 | sq4 | pq<M>x<4|8> | rabitq<1|2|4|8> | binary<1..8>")
        ->capture_default_str();
    sub->add_option("--memory-budget", o->memory_budget,
                    "Resident memory for the index (1GiB, 512MiB, bytes): picks the index type (unless --index-type), "
                    "codec and rescore depth that fit, and keeps float32 vectors on disk for indexes on codes "
                    "(docs/codecs.md)")
        ->excludes(codec);
    sub->add_option("--nlist", o->nlist, "IVF lists (0 = about 4 * sqrt(rows))");
    sub->add_option("--nprobe", o->nprobe, "IVF lists probed by default at search (0 = nlist / 32)");
    sub->add_option("--train-rows", o->train_rows, "Codec training sample (0 = the codec's default)");
    sub->add_option("--metric", o->metric, "Distance: cosine | l2 | ip")->capture_default_str();
    sub->add_option("--m", o->m, "HNSW links per node (level 0 keeps 2*m)")->capture_default_str();
    sub->add_option("--ef-construction", o->ef_construction, "HNSW build beam width")->capture_default_str();
    sub->add_option("--seed", o->seed, "HNSW level generator / k-means and codec seed")->capture_default_str();
    sub->add_option("--threads", o->threads, "Build threads (0 = all cores)")->capture_default_str();
    sub->add_option("--max-rows", o->max_rows, "Index only the first N rows (0 = all)");
    sub->add_option("--attributes", o->attributes, "JSONL attributes, one object per vector, for filtered search");
    sub->add_flag("--json", o->json, "Print a JSON summary on stdout instead of text");
    set_status_action(sub, "build", [o, index_type] {
        o->index_type_given = index_type->count() > 0;
        return run_build(*o);
    });
}

const CommandRegistrar kRegister{10, &add_build_command};

}  // namespace
}  // namespace quiver::cli
