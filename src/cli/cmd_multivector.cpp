// quiver multivector-build / multivector-search: multi-vector (late-interaction) indexes, reached as
// `quiver build --kind multivector` and `quiver search` on a multi-vector index file (main.cpp).
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/eval/run_file.h"
#include "quiver/multivector/multivector_index.h"

namespace quiver::cli {
namespace {

struct MvBuildOptions {
    std::string input, output, method = "muvera", fde_index = "hnsw", codec = "float32";
    std::size_t k_sim = 6, d_proj = 8, r_reps = 8, d_final = 0, m = 16, ef_construction = 100, threads = 0,
                max_docs = 0;
    std::uint64_t seed = 1;
    bool no_fill = false, no_center = false, json = false;
};

Status run_mv_build(const MvBuildOptions& o) {
    QUIVER_ASSIGN_OR_RETURN(multivector::SearchMethod method, multivector::parse_search_method(o.method));
    QUIVER_ASSIGN_OR_RETURN(multivector::TokenCodec codec, multivector::parse_token_codec(o.codec));
    QUIVER_ASSIGN_OR_RETURN(multivector::MultiVectorSet set, multivector::read_multivector_jsonl(o.input, o.max_docs));
    multivector::TokenStoreBuilder builder(set.dim, codec);
    for (auto& d : set.docs) {
        QUIVER_TRY(builder.add(d.view()));
        d = Matrix<float>();
    }
    multivector::MultiVectorBuildParams p;
    p.method = method;
    p.fde_index = o.fde_index;
    p.muvera = {.k_sim = o.k_sim, .d_proj = o.d_proj, .r_reps = o.r_reps, .fill_empty_partitions = !o.no_fill,
                .d_final = o.d_final, .seed = o.seed};
    p.hnsw = {.M = o.m, .ef_construction = o.ef_construction, .seed = 100, .threads = o.threads};
    p.center = !o.no_center;
    const std::size_t n = builder.size();
    ProgressBar bar(fmt::format("building {}", o.method), n, "documents");
    QUIVER_ASSIGN_OR_RETURN(auto ix, multivector::MultiVectorIndex::build(std::move(builder).finish(),
                                                                         std::move(set.ids), p, &bar));
    bar.finish();
    const double seconds = bar.elapsed_seconds();
    QUIVER_TRY(ix->save(o.output));
    std::error_code ec;
    const auto main_bytes = std::filesystem::file_size(o.output, ec);
    const auto fde_bytes = ix->fde_index() != nullptr ? std::filesystem::file_size(o.output + ".fde", ec) : 0;
    const double per_doc = n > 0 ? static_cast<double>(main_bytes + fde_bytes) / static_cast<double>(n) : 0.0;
    if (o.json) {
        json::Value v = json::Value::object();
        v.set("index", json::Value::string(o.output));
        v.set("method", json::Value::string(o.method));
        v.set("documents", json::Value::number(static_cast<double>(n)));
        v.set("tokens", json::Value::number(static_cast<double>(ix->store().total_tokens())));
        v.set("dim", json::Value::number(static_cast<double>(ix->dim())));
        v.set("codec", json::Value::string(o.codec));
        v.set("fde_dim", ix->muvera() ? json::Value::number(static_cast<double>(ix->muvera()->fde_dim())) : json::Value::null());
        v.set("build_seconds", json::Value::number(seconds));
        v.set("file_bytes", json::Value::number(static_cast<double>(main_bytes)));
        v.set("fde_file_bytes", json::Value::number(static_cast<double>(fde_bytes)));
        v.set("bytes_per_document", json::Value::number(per_doc));
        return write_text("-", json::dump(v, true) + "\n");
    }
    std::printf("built %s multi-vector index of %zu documents (%zu tokens x %zu, %s)%s in %.2fs -> %s (%.1f MiB%s), "
                "%.0f bytes per document\n",
                o.method.c_str(), n, ix->store().total_tokens(), ix->dim(), o.codec.c_str(),
                ix->muvera() ? fmt::format(", FDE {} in {}", ix->muvera()->fde_dim(), o.fde_index).c_str() : "", seconds,
                o.output.c_str(), static_cast<double>(main_bytes) / 1048576.0,
                fde_bytes > 0 ? fmt::format(" + {:.1f} MiB .fde", static_cast<double>(fde_bytes) / 1048576.0).c_str() : "",
                per_doc);
    return {};
}

struct MvSearchOptions {
    std::string index_file, queries, output = "-", trec, tag = "quiver";
    std::size_t k = 10, candidates = 0, ef = 0, max_queries = 0;
    bool json = false, in_memory = false;
};

Status run_mv_search(const MvSearchOptions& o) {
    if (o.k == 0) return invalid_argument("--k must be at least 1");
    QUIVER_ASSIGN_OR_RETURN(auto ix, multivector::MultiVectorIndex::open(o.index_file, {.in_memory = o.in_memory}));
    QUIVER_ASSIGN_OR_RETURN(multivector::MultiVectorSet qs, multivector::read_multivector_jsonl(o.queries, o.max_queries));
    if (qs.dim != ix->dim()) {
        return invalid_argument(fmt::format("queries in '{}' have token dimension {}, the index '{}' has {}", o.queries,
                                            qs.dim, o.index_file, ix->dim()));
    }
    const std::size_t nq = qs.docs.size();
    std::vector<std::vector<multivector::Hit>> results(nq);
    ProgressBar bar("searching", nq, "queries");
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t q = 0; q < nq; ++q) {
        QUIVER_ASSIGN_OR_RETURN(results[q], ix->search(qs.docs[q].view(),
                                                       {.k = o.k, .candidates = o.candidates, .ef = o.ef}));
        bar.add(1);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.finish();
    std::string out;
    if (o.json) {
        json::Value root = json::Value::array();
        for (std::size_t q = 0; q < nq; ++q) {
            json::Value hits = json::Value::array();
            for (const auto& h : results[q]) {
                json::Value v = json::Value::object();
                v.set("id", json::Value::string(ix->id(h.doc)));
                v.set("score", json::Value::number_from_float(h.score));
                hits.as_array().push_back(std::move(v));
            }
            json::Value row = json::Value::object();
            row.set("query", json::Value::string(qs.ids[q]));
            row.set("hits", std::move(hits));
            root.as_array().push_back(std::move(row));
        }
        out = json::dump(root, true) + "\n";
    } else {
        out = "query\trank\tid\tscore\n";
        for (std::size_t q = 0; q < nq; ++q) {
            for (std::size_t j = 0; j < results[q].size(); ++j) {
                out += fmt::format("{}\t{}\t{}\t{:.6g}\n", qs.ids[q], j + 1, ix->id(results[q][j].doc), results[q][j].score);
            }
        }
    }
    QUIVER_TRY(write_text(o.output, out));
    if (!o.trec.empty()) {
        eval::Run run;
        for (std::size_t q = 0; q < nq; ++q) {
            auto& list = run[qs.ids[q]];
            for (const auto& h : results[q]) list.push_back({ix->id(h.doc), static_cast<double>(h.score)});
        }
        QUIVER_TRY(eval::write_run(o.trec, run, o.tag));
    }
    std::fprintf(stderr, "%zu queries in %.3f s = %.0f QPS (k=%zu, %s, one thread)\n", nq, seconds,
                 seconds > 0 ? static_cast<double>(nq) / seconds : 0.0, o.k,
                 ix->method() == multivector::SearchMethod::kMuvera
                     ? fmt::format("muvera, {} candidates re-ranked by MaxSim",
                                   o.candidates == 0 ? std::max<std::size_t>(10 * o.k, 100) : o.candidates)
                           .c_str()
                     : "exact MaxSim");
    return {};
}

void add_multivector_commands(CLI::App& app) {
    auto b = std::make_shared<MvBuildOptions>();
    auto* sb = app.add_subcommand("multivector-build",
                                  "Build a multi-vector (late-interaction) index: MUVERA or exact MaxSim (also `build --kind multivector`)");
    sb->footer(
        "Input: JSONL with {\"id\": ..., \"vectors\": [[...], ...]} per line (`quiver encode --kind multivector`).\n"
        "--index muvera: document FDEs (k_sim, d_proj, r_reps, fill_empty_partitions, d_final) in an HNSW or flat\n"
        "inner-product index written to <output>.fde, or (--fde-index blocks, d_final 0) as int8 partition blocks\n"
        "inside the index file, scanned only where the query has tokens; searches re-rank FDE candidates by\n"
        "MaxSim over the stored token vectors (float32, or int8 codes scored by the int8 kernel). --index exact:\n"
        "MaxSim brute force. See docs/multivector.md.\n"
        "Example: quiver build --kind multivector --input docs.jsonl --index muvera --output docs.mvix");
    sb->add_option("-i,--input", b->input, "Multi-vector JSONL")->required();
    sb->add_option("-o,--output", b->output, "Index file to write (and <output>.fde for MUVERA)")->required();
    sb->add_option("--index,--index-type", b->method, "muvera | exact")->capture_default_str();
    sb->add_option("--fde-index", b->fde_index, "FDE candidate stage: hnsw | flat | blocks")->capture_default_str();
    sb->add_option("--codec", b->codec, "Token store: float32 | int8")->capture_default_str();
    sb->add_option("--k-sim", b->k_sim, "MUVERA SimHash hyperplanes (2^k_sim partitions)")->capture_default_str();
    sb->add_option("--d-proj", b->d_proj, "MUVERA inner projection width (0 = identity)")->capture_default_str();
    sb->add_option("--r-reps", b->r_reps, "MUVERA repetitions")->capture_default_str();
    sb->add_option("--d-final", b->d_final, "MUVERA Count-Sketch output size (0 = none)")->capture_default_str();
    sb->add_flag("--no-fill-empty", b->no_fill, "MUVERA: leave empty document partitions at zero");
    sb->add_flag("--no-center", b->no_center, "MUVERA: SimHash hyperplanes through the origin, not the mean token");
    sb->add_option("--seed", b->seed, "MUVERA random draws")->capture_default_str();
    sb->add_option("--m", b->m, "HNSW links per node")->capture_default_str();
    sb->add_option("--ef-construction", b->ef_construction, "HNSW build beam width")->capture_default_str();
    sb->add_option("--threads", b->threads, "Build threads (0 = all cores)")->capture_default_str();
    sb->add_option("--max-docs", b->max_docs, "Index only the first N documents (0 = all)");
    sb->add_flag("--json", b->json, "Print a JSON summary on stdout");
    set_status_action(sb, "multivector-build", [b] { return run_mv_build(*b); });

    auto s = std::make_shared<MvSearchOptions>();
    auto* ss = app.add_subcommand("multivector-search",
                                  "Search a multi-vector index with query token matrices (also `search` on an MVIX file)");
    ss->footer(
        "Queries: multi-vector JSONL (`quiver encode --kind multivector --role query`). Prints query, rank, id and\n"
        "MaxSim score per hit (--json for JSON); one thread; a summary on stderr.\n"
        "Example: quiver search --index-file docs.mvix --queries queries.jsonl --k 10 --candidates 200");
    ss->add_option("--index-file", s->index_file, "Index written by `quiver build --kind multivector`")->required();
    ss->add_option("-q,--queries", s->queries, "Query multi-vector JSONL")->required();
    ss->add_option("-k,--k", s->k, "Results per query")->capture_default_str();
    ss->add_option("--candidates", s->candidates, "MUVERA: FDE candidates re-ranked (0 = max(10 k, 100))")
        ->capture_default_str();
    ss->add_option("--ef", s->ef, "HNSW beam width over FDEs (0 = candidates; flat and blocks ignore it)")
        ->capture_default_str();
    ss->add_option("--max-queries", s->max_queries, "Use only the first N queries (0 = all)");
    ss->add_flag("--in-memory", s->in_memory, "Copy the token store into RAM instead of mapping it");
    ss->add_option("-o,--output", s->output, "Write results here instead of stdout");
    ss->add_option("--trec", s->trec, "Also write a TREC run (score = MaxSim)");
    ss->add_option("--tag", s->tag, "Run tag of --trec")->capture_default_str();
    ss->add_flag("--json", s->json, "JSON output");
    set_status_action(ss, "multivector-search", [s] { return run_mv_search(*s); });
}

const CommandRegistrar kRegister{22, &add_multivector_commands};

}  // namespace
}  // namespace quiver::cli
