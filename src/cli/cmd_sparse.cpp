// quiver sparse-gen / sparse-build / sparse-search: learned-sparse vectors (SPLADE-style, BM25 impacts),
// the Seismic approximate index and the exact block-max MaxScore baseline. See docs/seismic.md.
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_set>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/eval/run_file.h"
#include "quiver/core/thread_pool.h"
#include "quiver/sparse/exact_sparse.h"
#include "quiver/sparse/seismic.h"
#include "quiver/sparse/sparse_vector_text.h"
#include "quiver/sparse/synthetic.h"
#include "quiver/storage/file_format.h"

namespace quiver::cli {
namespace {

// ---- sparse-gen -------------------------------------------------------------------------------------

struct GenOptions {
    sparse::SyntheticParams synth;
    sparse::ImpactParams impacts;
    std::string corpus, corpus_queries, out_docs, out_queries;
    std::vector<std::string> extra_text;
};

Status run_gen(const GenOptions& o) {
    sparse::SparseCollection docs;
    sparse::QuerySet queries;
    ProgressHeartbeat beat("sparse-gen");
    if (!o.corpus.empty() && o.corpus_queries.empty()) return invalid_argument("--from-corpus needs --corpus-queries");
    if (o.corpus.empty() && !o.extra_text.empty()) return invalid_argument("--extra-text needs --from-corpus");
    if (!o.corpus.empty()) {
        QUIVER_ASSIGN_OR_RETURN(auto texts, sparse::read_text_jsonl(o.corpus));
        std::unordered_set<std::string> ids;
        for (const sparse::TextRecord& r : texts) ids.insert(r.id);
        for (const std::string& path : o.extra_text) {
            QUIVER_ASSIGN_OR_RETURN(auto extra, sparse::read_text_records(path, sparse::text_id_prefix(path)));
            for (sparse::TextRecord& r : extra) {
                if (!ids.insert(r.id).second)
                    return invalid_argument(fmt::format("--extra-text {}: document id '{}' is already in the collection", path, r.id));
                texts.push_back(std::move(r));
            }
            std::fprintf(stderr, "read %zu extra documents from %s\n", extra.size(), path.c_str());
        }
        QUIVER_ASSIGN_OR_RETURN(auto qtexts, sparse::read_text_jsonl(o.corpus_queries));
        QUIVER_ASSIGN_OR_RETURN(docs, sparse::bm25_impacts(texts, o.impacts));
        QUIVER_ASSIGN_OR_RETURN(queries, sparse::expanded_queries(docs, qtexts, o.impacts));
    } else {
        QUIVER_ASSIGN_OR_RETURN(sparse::SyntheticData d, sparse::generate_synthetic(o.synth));
        docs = std::move(d.docs);
        queries = std::move(d.queries);
    }
    QUIVER_TRY(sparse::write_collection_jsonl(o.out_docs, docs));
    if (!o.out_queries.empty()) QUIVER_TRY(sparse::write_queries_jsonl(o.out_queries, queries, docs.vocab));
    const sparse::SparseStats ds = sparse::compute_stats(docs), qs = sparse::compute_stats(queries.vectors);
    std::fprintf(stderr,
                 "wrote %zu documents (nnz mean %.1f, min %g, max %g; top-10%% mass %.2f; vocabulary %u) to %s\n"
                 "%zu queries (nnz mean %.1f, min %g, max %g)%s%s\n",
                 ds.vectors, ds.mean_nnz, ds.min_nnz, ds.max_nnz, ds.top10pct_mass, docs.dim(), o.out_docs.c_str(),
                 qs.vectors, qs.mean_nnz, qs.min_nnz, qs.max_nnz, o.out_queries.empty() ? " (not written)" : " to ",
                 o.out_queries.c_str());
    return {};
}

void add_sparse_gen_command(CLI::App& app) {
    auto o = std::make_shared<GenOptions>();
    auto* sub = app.add_subcommand("sparse-gen", "Generate learned-sparse test collections (SPLADE-like, or BM25 impacts of a real corpus)");
    sub->footer(
        "Writes JsonVectorCollection JSONL ({\"id\",\"contents\",\"vector\":{term: weight}}) for sparse-build and\n"
        "bench sparse. Synthetic collections use integer term ids (read them with --term-mode integer or as strings).\n"
        "Examples:\n"
        "  quiver sparse-gen --docs 100000 --queries 1000 --output-docs docs.jsonl --output-queries queries.jsonl\n"
        "  quiver sparse-gen --from-corpus scifact/corpus.jsonl --corpus-queries scifact/queries.jsonl \\\n"
        "      --output-docs scifact-docs.jsonl --output-queries scifact-queries.jsonl\n"
        "  quiver sparse-gen --from-corpus scifact/corpus.jsonl --corpus-queries scifact/queries.jsonl \\\n"
        "      --extra-text cranfield/cran.all.1400 --extra-text topics.beir-v1.0.0-nq.test.tsv.gz ... \\\n"
        "      --output-docs mixed-docs.jsonl --output-queries mixed-queries.jsonl");
    sub->add_option("--output-docs", o->out_docs, "Output documents (JSONL)")->required();
    sub->add_option("--output-queries", o->out_queries, "Output queries (JSONL)");
    sub->add_option("--docs", o->synth.docs, "Synthetic: number of documents")->capture_default_str();
    sub->add_option("--queries", o->synth.queries, "Synthetic: number of queries")->capture_default_str();
    sub->add_option("--vocab", o->synth.vocab, "Synthetic: vocabulary size")->capture_default_str();
    sub->add_option("--topics", o->synth.topics, "Synthetic: topics (0 = clamp(docs/500, 20, 2000))")->capture_default_str();
    sub->add_option("--seed", o->synth.seed, "Synthetic: seed")->capture_default_str();
    sub->add_option("--threads", o->synth.threads, "Synthetic: generation threads (0 = all cores)")->capture_default_str();
    sub->add_option("--from-corpus", o->corpus, "Real text instead: BEIR corpus.jsonl ({\"_id\",\"title\",\"text\"}) -> BM25 impacts");
    sub->add_option("--extra-text", o->extra_text,
                    "Real text: more documents (repeatable): BEIR JSONL, TSV id<TAB>text (.gz ok) or SMART .I records; "
                    "ids get the file's base name as prefix")
        ->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    sub->add_option("--corpus-queries", o->corpus_queries, "Real text: BEIR queries.jsonl, expanded by pseudo-relevance feedback");
    sub->add_option("--k1", o->impacts.k1, "Real text: BM25 k1")->capture_default_str();
    sub->add_option("--b", o->impacts.b, "Real text: BM25 b")->capture_default_str();
    sub->add_option("--feedback-docs", o->impacts.feedback_docs, "Real text: feedback documents per query")->capture_default_str();
    sub->add_option("--expansion-terms", o->impacts.expansion_terms, "Real text: terms added per query")->capture_default_str();
    set_status_action(sub, "sparse-gen", [o] { return run_gen(*o); });
}

// ---- sparse-build -----------------------------------------------------------------------------------

struct BuildOptions {
    std::string input, kind = "seismic", output, term_mode = "string", weights = "f32";
    sparse::SeismicBuildParams seismic;
};

Status run_build(BuildOptions o) {
    const sparse::TermMode mode = o.term_mode == "integer" ? sparse::TermMode::kInteger : sparse::TermMode::kString;
    std::optional<ProgressHeartbeat> reading(std::in_place, "sparse-build: reading " + o.input);
    QUIVER_ASSIGN_OR_RETURN(sparse::SparseCollection docs, sparse::read_collection_jsonl(o.input, sparse::Vocabulary(mode)));
    reading.reset();
    const sparse::SparseStats ds = sparse::compute_stats(docs);
    std::fprintf(stderr, "read %zu documents, %zu non-zeros (%.1f per document), vocabulary %u\n", ds.vectors, ds.nnz,
                 ds.mean_nnz, docs.dim());
    if (o.kind == "exact") {
        const sparse::WeightType wt = o.weights == "u8" ? sparse::WeightType::kQuantized8 : sparse::WeightType::kFloat32;
        ProgressHeartbeat beat("sparse-build: exact index");
        QUIVER_ASSIGN_OR_RETURN(sparse::ExactSparseIndex ix, sparse::ExactSparseIndex::build(docs, wt));
        QUIVER_TRY(ix.save(o.output));
        std::fprintf(stderr, "exact index: %.1f MiB written to %s\n", static_cast<double>(ix.bytes()) / 1048576.0,
                     o.output.c_str());
        return {};
    }
    if (o.weights == "u8") return invalid_argument("--weights u8 applies to --index-type exact; seismic takes f32 or bf16");
    o.seismic.weights = o.weights == "bf16" ? sparse::WeightFormat::kBf16 : sparse::WeightFormat::kF32;
    QUIVER_ASSIGN_OR_RETURN(sparse::SeismicIndex ix, sparse::SeismicIndex::build(docs, o.seismic));
    QUIVER_TRY(ix.save(o.output));
    const sparse::SeismicStats st = ix.stats();
    std::fprintf(stderr,
                 "seismic index: %zu postings kept of %zu, %zu blocks; %.1f MiB (raw forward index %.1f MiB) written to %s\n",
                 st.postings, st.nnz, st.blocks, static_cast<double>(st.total_bytes()) / 1048576.0,
                 static_cast<double>(st.raw_forward_bytes) / 1048576.0, o.output.c_str());
    return {};
}

void add_sparse_build_command(CLI::App& app) {
    auto o = std::make_shared<BuildOptions>();
    auto* sub = app.add_subcommand("sparse-build", "Build a learned-sparse index (Seismic or exact) from JsonVectorCollection JSONL");
    sub->footer(
        "Input: one JSON object per line, {\"id\": ..., \"contents\": ..., \"vector\": {\"term\": weight, ...}} (Anserini's\n"
        "JsonVectorCollection; the output of `quiver encode --kind sparse`). Weights must be finite and >= 0;\n"
        "zero weights are dropped; a term twice in one vector, or a document id twice, is an error; empty vectors are\n"
        "kept but never returned.\n"
        "Example: quiver sparse-build --input docs.jsonl --index-type seismic --output docs.seis --n-postings 1000");
    sub->add_option("-i,--input", o->input, "Documents (JSONL)")->required();
    sub->add_option("--index-type", o->kind, "seismic (approximate, fast) or exact (block-max MaxScore)")
        ->check(CLI::IsMember({"seismic", "exact"}))->capture_default_str();
    sub->add_option("-o,--output", o->output, "Index file to write")->required();
    sub->add_option("--term-mode", o->term_mode, "Term keys: string (any key gets an id) or integer (keys are ids)")
        ->check(CLI::IsMember({"string", "integer"}))->capture_default_str();
    sub->add_option("--weights", o->weights, "Stored weights: f32; bf16 (seismic forward index); u8 (exact, per-list scale)")
        ->check(CLI::IsMember({"f32", "bf16", "u8"}))->capture_default_str();
    auto& p = o->seismic;
    sub->add_option("--n-postings", p.n_postings, "Seismic lambda: average postings kept per list")->capture_default_str();
    sub->add_option("--max-fraction", p.max_fraction, "Seismic: list cap as a multiple of n-postings")->capture_default_str();
    sub->add_option("--centroid-fraction", p.centroid_fraction, "Seismic beta: blocks per kept posting")->capture_default_str();
    sub->add_option("--summary-energy", p.summary_energy, "Seismic alpha: L1 mass kept by each block summary")->capture_default_str();
    sub->add_option("--summary-max-entries", p.summary_max_entries, "Seismic: at most this many components per block summary (0 = no cap)")->capture_default_str();
    sub->add_option("--summary-min-postings", p.summary_min_postings, "Seismic: lists with fewer kept postings get no summary (always scanned)")->capture_default_str();
    sub->add_option("--min-cluster-size", p.min_cluster_size, "Seismic: dissolve clusters this small")->capture_default_str();
    sub->add_option("--doc-cut", p.doc_cut, "Seismic: document components used for clustering")->capture_default_str();
    sub->add_option("--knn", p.knn, "Seismic: k-NN graph neighbours per document for refinement (0 = none; one search per document)")->capture_default_str();
    sub->add_option("--seed", p.seed, "Seismic: clustering seed")->capture_default_str();
    sub->add_option("--threads", p.threads, "Build threads (0 = all cores)")->capture_default_str();
    set_status_action(sub, "sparse-build", [o] { return run_build(*o); });
}

// ---- sparse-search ----------------------------------------------------------------------------------

struct SearchOptions {
    std::string index, queries, output = "-", trec, tag = "quiver";
    sparse::SeismicSearchParams params;
    std::size_t threads = 0;
    bool json = false;
};

// Either index kind behind one search call; the kind is read from the file header.
struct AnyIndex {
    std::optional<sparse::SeismicIndex> seismic;
    std::optional<sparse::ExactSparseIndex> exact;
    const sparse::Vocabulary& vocab() const { return seismic ? seismic->vocab() : exact->vocab(); }
    std::string_view doc_id(std::uint32_t d) const { return seismic ? seismic->doc_id(d) : exact->doc_id(d); }
};

Result<AnyIndex> open_any(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(storage::MappedFile f, storage::MappedFile::open(path));
    std::uint32_t kind = 0;
    if (f.bytes().size() >= 8) std::memcpy(&kind, f.bytes().data() + 4, 4);
    AnyIndex ix;
    if (kind == storage::fourcc("SPEX")) {
        QUIVER_ASSIGN_OR_RETURN(auto e, sparse::ExactSparseIndex::open(path));
        ix.exact.emplace(std::move(e));
    } else {
        QUIVER_ASSIGN_OR_RETURN(auto s, sparse::SeismicIndex::open(path));
        ix.seismic.emplace(std::move(s));
    }
    return ix;
}

Status run_sparse_search(const SearchOptions& o) {
    QUIVER_ASSIGN_OR_RETURN(AnyIndex ix, open_any(o.index));
    QUIVER_ASSIGN_OR_RETURN(sparse::QuerySet qs, sparse::read_queries(o.queries, ix.vocab()));
    if (qs.unknown_terms > 0)
        std::fprintf(stderr, "note: %zu query terms are not in the index vocabulary and were ignored\n", qs.unknown_terms);
    if (o.tag.empty() || o.tag.find_first_of(" \t\r\n") != std::string::npos) return invalid_argument("--tag must be one word");
    QUIVER_TRY(check_unique_ids(qs.ids, o.queries, "query"));
    std::vector<std::vector<sparse::SparseHit>> results(qs.size());
    ThreadPool pool(resolve_threads(o.threads));
    ProgressBar bar("searching", qs.size(), "queries");
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<sparse::SeismicSearcher>> searchers(pool.size());
    pool.parallel_for(qs.size(), [&](std::size_t q, std::size_t worker) {
        if (ix.seismic) {
            if (!searchers[worker]) searchers[worker] = std::make_unique<sparse::SeismicSearcher>(*ix.seismic);
            results[q] = searchers[worker]->search(qs.vectors[q].view(), o.params);
        } else {
            results[q] = ix.exact->search(qs.vectors[q].view(), o.params.k);
        }
        bar.add(1);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.finish();
    std::string out;
    if (o.json) {
        json::Value root = json::Value::array();
        for (std::size_t q = 0; q < qs.size(); ++q) {
            json::Value hits = json::Value::array();
            for (const auto& h : results[q]) {
                json::Value v = json::Value::object();
                v.set("id", json::Value::string(std::string(ix.doc_id(h.doc))));
                v.set("score", json::Value::number(h.score));
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
        for (std::size_t q = 0; q < qs.size(); ++q)
            for (std::size_t j = 0; j < results[q].size(); ++j)
                out += fmt::format("{}\t{}\t{}\t{:.6g}\n", qs.ids[q], j + 1, ix.doc_id(results[q][j].doc), results[q][j].score);
    }
    QUIVER_TRY(write_text(o.output, out));
    if (!o.trec.empty()) {
        eval::Run run;
        for (std::size_t q = 0; q < qs.size(); ++q) {
            auto& list = run[qs.ids[q]];
            for (const auto& h : results[q]) list.push_back({std::string(ix.doc_id(h.doc)), static_cast<double>(h.score)});
        }
        QUIVER_TRY(eval::write_run(o.trec, run, o.tag));
    }
    std::fprintf(stderr, "%zu queries in %.3f s = %.0f QPS (k=%zu, %s, threads=%zu)%s%s\n", qs.size(), seconds,
                 seconds > 0 ? static_cast<double>(qs.size()) / seconds : 0.0, o.params.k,
                 ix.seismic ? "seismic" : "exact", pool.size(), o.trec.empty() ? "" : "; TREC run -> ",
                 o.trec.c_str());
    return {};
}

void add_sparse_search_command(CLI::App& app) {
    auto o = std::make_shared<SearchOptions>();
    auto* sub = app.add_subcommand("sparse-search", "Search a learned-sparse index (from sparse-build) with sparse queries");
    sub->footer(
        "Queries: JSONL like the documents, or TSV `qid<TAB>term:weight term:weight ...` (a bare term counts 1 per\n"
        "occurrence). Terms unknown to the index are ignored (counted on stderr). Prints query, rank, id, score\n"
        "(tab-separated; larger score is better), or --json. The index kind (seismic or exact) is read from the file.\n"
        "Prints a summary on stderr (queries, seconds, QPS); --trec writes a TREC run for `quiver eval --run-file`.\n"
        "Example: quiver sparse-search --index-file docs.seis --queries queries.jsonl --k 10 --query-cut 5 --heap-factor 0.9");
    sub->add_option("--index-file", o->index, "Index file written by `quiver sparse-build`")->required();
    sub->add_option("-q,--queries", o->queries, "Queries (JSONL or TSV)")->required();
    sub->add_option("-k,--k", o->params.k, "Results per query")->capture_default_str();
    sub->add_option("--query-cut", o->params.query_cut, "Seismic: query terms (largest weights) whose lists are scanned")->capture_default_str();
    sub->add_option("--heap-factor", o->params.heap_factor, "Seismic: skip a block whose summary score < heap-factor x k-th score")->capture_default_str();
    sub->add_flag("!--no-first-sorted", o->params.first_sorted, "Seismic: scan the first list's blocks in stored order");
    sub->add_option("--n-knn", o->params.n_knn, "Seismic: graph neighbours scored per result (index built with --knn)")->capture_default_str();
    sub->add_option("--threads", o->threads, "Threads over queries (0 = all cores)")->capture_default_str();
    sub->add_option("-o,--output", o->output, "Write results here instead of stdout");
    sub->add_option("--trec", o->trec, "Also write the results as a TREC run file here");
    sub->add_option("--tag", o->tag, "Run tag of --trec")->capture_default_str();
    sub->add_flag("--json", o->json, "JSON output (stdout, or --output)");
    set_status_action(sub, "sparse-search", [o] { return run_sparse_search(*o); });
}

const CommandRegistrar kRegGen{60, &add_sparse_gen_command};
const CommandRegistrar kRegBuild{61, &add_sparse_build_command};
const CommandRegistrar kRegSearch{62, &add_sparse_search_command};

}  // namespace
}  // namespace quiver::cli
