// quiver search: index file + query vectors -> nearest neighbours (TSV or JSON, and a TREC run).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/engine/payload_index.h"
#include "quiver/eval/run_file.h"
#include "quiver/index/filtered_search.h"
#include "quiver/index/vector_index.h"
#include "quiver/server/json_codec.h"
#include "quiver/storage/file_format.h"
#include "quiver/storage/vector_io.h"

namespace quiver::cli {
namespace {

struct SearchOptions {
    std::string index_file, queries, output = "-", truth, trec, tag = "quiver", filter, strategy = "auto";
    std::size_t k = 10, ef = 0, threads = 0, max_queries = 0, nprobe = 0;
    std::size_t rescore = index::SearchParams::kRescoreDefault;
    bool json = false;
    bool vectors_on_disk = false;
    bool verify = false;
    bool latency = false;
};

Status parse_filter_strategy_into(const std::string& name, index::FilterStrategy& out) {
    QUIVER_ASSIGN_OR_RETURN(out, index::parse_filter_strategy(name));
    if (out == index::FilterStrategy::kUnfiltered) return invalid_argument("--filter-strategy unfiltered would ignore the filter");
    return {};
}

/// Lets through the labels of one truth row (sorted for binary search).
class LabelSet final : public index::LabelFilter {
public:
    explicit LabelSet(std::vector<Label> labels) : labels_(std::move(labels)) {
        std::sort(labels_.begin(), labels_.end());
    }
    bool allows(Label label) const noexcept override {
        return std::binary_search(labels_.begin(), labels_.end(), label);
    }

private:
    std::vector<Label> labels_;
};

bool farther(float a, float b) {  // a > b beyond float noise
    return a > b + 1e-4f * std::max(std::abs(a), std::abs(b)) + 1e-5f;
}

/// Checks a truth file before any search: its size against the queries and the index, and that its
/// rows are exact neighbours under the index's own metric. On a sample of queries the truth's ids
/// are scored by the index (a search restricted to them); exact neighbours come in non-decreasing
/// distance, and their j-th distance is never beyond the j-th the index finds by itself. A truth
/// computed with another metric (or for another base) breaks one of these on most queries.
/// `queries` are the searchable rows; row i is query rows[i] of the file, of `nq` in all.
Status check_truth(const index::VectorIndex& idx, MatrixView<float> queries, const std::vector<std::size_t>& rows,
                   std::size_t nq, const Matrix<std::int32_t>& gt, const SearchOptions& o, bool filtered) {
    const auto info = idx.info();
    if (gt.rows < nq || gt.dim < o.k) {
        return invalid_argument(fmt::format("truth '{}' has {} rows of {} ids; the search needs {} rows of at least {}",
                                            o.truth, gt.rows, gt.dim, nq, o.k));
    }
    for (std::size_t q = 0; q < nq; ++q) {
        for (std::size_t j = 0; j < o.k; ++j) {
            const std::int32_t id = gt.row_ptr(q)[j];
            if (id < 0 || static_cast<std::size_t>(id) >= info.size) {
                return invalid_argument(fmt::format(
                    "truth '{}' row {} names vector {}, but the index '{}' holds {} vectors (truth for another base?)",
                    o.truth, q + 1, id, o.index_file, info.size));
            }
        }
    }
    // Filtered truth is the exact top-k of each query's matching set: its distances are not the
    // index's unfiltered ones, so only the shape and the ids are checked.
    if (filtered) return {};
    const std::size_t sample = std::min<std::size_t>(queries.rows, 32);
    std::size_t checked = 0, bad = 0;
    for (std::size_t i = 0; i < sample; ++i) {
        const std::size_t q = rows[i];
        std::vector<Label> ids(o.k);
        for (std::size_t j = 0; j < o.k; ++j) ids[j] = Label{static_cast<std::uint64_t>(gt.row_ptr(q)[j])};
        LabelSet only(ids);
        const MatrixView<float> one = queries.slice(i, 1);
        QUIVER_ASSIGN_OR_RETURN(auto mine, idx.search(one, {.k = o.k, .ef = o.k, .threads = 1, .filter = &only}));
        if (mine.count(0) < o.k) continue;  // an id the graph did not reach: no verdict on this query
        std::vector<float> truth_dist(o.k);
        for (std::size_t j = 0; j < o.k; ++j) {
            for (std::size_t h = 0; h < o.k; ++h) {
                if (mine.label(0, h) == ids[j]) truth_dist[j] = mine.distance(0, h);
            }
        }
        QUIVER_ASSIGN_OR_RETURN(auto found, idx.search(one, {.k = o.k, .ef = std::max<std::size_t>({o.ef, o.k, 64}),
                                                             .threads = 1}));
        bool ok = found.count(0) == o.k;
        for (std::size_t j = 0; ok && j + 1 < o.k; ++j) ok = !farther(truth_dist[j], truth_dist[j + 1]);
        std::vector<float> sorted = truth_dist;
        std::sort(sorted.begin(), sorted.end());
        for (std::size_t j = 0; ok && j < o.k; ++j) ok = !farther(sorted[j], found.distance(0, j));
        ++checked;
        bad += ok ? 0 : 1;
    }
    if (checked > 0 && bad * 10 > checked) {
        return invalid_argument(fmt::format(
            "truth '{}' is not the exact top-{} of these queries under the index's metric ({}): {} of {} sampled "
            "queries disagree (computed with another metric, or for other queries or another base?)",
            o.truth, o.k, simd::to_string(info.metric), bad, checked));
    }
    return {};
}

/// Filters of a search: --filter for every query, or a "filter" member on lines of a JSONL query
/// file (lines without one are unfiltered), evaluated on the payload index beside the index file
/// (`quiver build --attributes` wrote it as <index>.attrs). Each distinct filter is evaluated once.
struct QueryFilters {
    bool any = false;
    engine::PayloadIndex payload;
    std::vector<std::optional<std::size_t>> of_query;  // index into `bitmaps`, per query
    std::vector<Bitmap> bitmaps;
    std::vector<index::FilterPlan> plans;                // per query (filtered ones)
    index::FilterStrategy strategy = index::FilterStrategy::kAuto;

    Result<index::SearchResults> search(const index::VectorIndex& idx, MatrixView<float> qs,
                                        const std::vector<std::size_t>& rows, std::size_t first,
                                        const SearchOptions& o) {
        index::SearchResults out(qs.rows, o.k);
        ThreadPool pool(resolve_threads(o.threads));
        std::vector<Status> errors(pool.size());
        pool.parallel_for(qs.rows, [&](std::size_t i, std::size_t worker) {
            const std::size_t q = rows[first + i];
            index::FilteredSearchParams fp;
            fp.k = o.k;
            fp.ef = o.ef;
            fp.strategy = strategy;
            // Labels are rows 0..n-1 (`quiver build`), as the attributes: a full bitmap passes all.
            const Bitmap* allowed = of_query[q] ? &bitmaps[*of_query[q]] : nullptr;
            if (allowed != nullptr && allowed->cardinality() >= idx.info().size) allowed = nullptr;
            auto found = index::filtered_search(idx, std::span<const float>(qs.row_ptr(i), qs.dim), allowed, fp, &plans[q]);
            if (!found) {
                errors[worker] = std::move(found).error();
                return;
            }
            for (std::size_t j = 0; j < found->size(); ++j) {
                out.labels[i * o.k + j] = (*found)[j].label;
                out.distances[i * o.k + j] = (*found)[j].distance;
            }
        });
        for (auto& e : errors) {
            if (!e) return e.error();
        }
        return out;
    }

    json::Value explain(std::size_t q) const {
        if (!of_query[q]) return json::Value::null();
        const auto& p = plans[q];
        json::Value v = json::Value::object();
        v.set("strategy", json::Value::string(std::string(index::to_string(p.strategy))));
        v.set("matches", json::Value::number(static_cast<double>(p.matches)));
        v.set("size", json::Value::number(static_cast<double>(p.size)));
        v.set("selectivity", json::Value::number(p.selectivity));
        v.set("reason", json::Value::string(p.reason));
        v.set("fallback", json::Value::boolean(p.fallback));
        return v;
    }

    std::string summary() const {
        std::map<std::string, std::size_t> n;
        for (std::size_t q = 0; q < of_query.size(); ++q) {
            if (of_query[q]) ++n[std::string(index::to_string(plans[q].strategy)) + (plans[q].fallback ? "+fallback" : "")];
        }
        std::string out;
        for (const auto& [s, c] : n) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", c, s);
        return out;
    }
};

Result<QueryFilters> load_filters(const SearchOptions& o, std::size_t nq) {
    QueryFilters f;
    f.of_query.assign(nq, std::nullopt);
    f.plans.resize(nq);
    std::vector<std::string> texts(nq);  // the filter JSON per query ("" = none)
    if (!o.filter.empty()) {
        for (auto& t : texts) t = o.filter;
    }
    const bool jsonl = o.queries.size() > 6 && (o.queries.ends_with(".jsonl") || o.queries.ends_with(".ndjson"));
    if (jsonl) {
        QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(o.queries));
        std::size_t pos = 0, row = 0, line_no = 0;
        while (pos < text.size() && row < nq) {
            std::size_t end = text.find('\n', pos);
            if (end == std::string::npos) end = text.size();
            const std::string_view line(text.data() + pos, end - pos);
            pos = end + 1;
            ++line_no;
            if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
            auto v = json::parse(line);
            if (!v) return invalid_argument(fmt::format("{}:{}: {}", o.queries, line_no, v.error().message()));
            if (const json::Value* fv = v->is_object() ? v->find("filter") : nullptr) {
                if (!o.filter.empty()) {
                    return invalid_argument(fmt::format("{}:{} has a filter and --filter is given: use one", o.queries, line_no));
                }
                texts[row] = json::dump(*fv);
            }
            ++row;
        }
    }
    for (const auto& t : texts) f.any = f.any || !t.empty();
    if (!f.any) return f;
    QUIVER_TRY(parse_filter_strategy_into(o.strategy, f.strategy));
    const std::string attrs = o.index_file + ".attrs";
    auto payload = engine::PayloadIndex::open(attrs);
    if (!payload) {
        return invalid_argument(fmt::format("filtered search needs the attributes of '{}' ({}): build it with "
                                            "`quiver build ... --attributes A.jsonl`", o.index_file,
                                            payload.error().message()));
    }
    f.payload = std::move(payload).value();
    engine::Schema schema;
    schema.fields = f.payload.fields();
    std::map<std::string, std::size_t> seen;
    for (std::size_t q = 0; q < nq; ++q) {
        if (texts[q].empty()) continue;
        auto it = seen.find(texts[q]);
        if (it == seen.end()) {
            auto v = json::parse(texts[q]);
            if (!v) return invalid_argument("--filter is not JSON: " + v.error().message());
            auto filter = server::filter_from_json(*v);
            if (!filter) return invalid_argument(fmt::format("filter of query {}: {}", q + 1, filter.error().message()));
            if (auto st = filter->validate(schema); !st) {
                return invalid_argument(fmt::format("filter of query {}: {}", q + 1, st.error().message()));
            }
            f.bitmaps.push_back(engine::evaluate_filter(*filter, f.payload, {}));
            it = seen.emplace(texts[q], f.bitmaps.size() - 1).first;
        }
        f.of_query[q] = it->second;
    }
    return f;
}

Status run_search(const SearchOptions& o) {
    if (o.k == 0) return invalid_argument("--k must be at least 1");
    if (o.tag.empty() || o.tag.find_first_of(" \t\r\n") != std::string::npos) {
        return invalid_argument("--tag must be one word");
    }
    QUIVER_ASSIGN_OR_RETURN(auto idx, index::open_index(o.index_file, {.vectors_on_disk = o.vectors_on_disk,
                                                                     .verify = o.verify}));
    QUIVER_ASSIGN_OR_RETURN(storage::VectorSet qs, read_vectors_with_ids(o.queries, {.max_rows = o.max_queries}));
    const auto info = idx->info();
    if (qs.vectors.dim != info.dim) {
        return invalid_argument(fmt::format("queries in '{}' have dimension {}, the index '{}' has {}", o.queries,
                                            qs.vectors.dim, o.index_file, info.dim));
    }
    const std::size_t nq = qs.vectors.rows;
    // A zero query has no cosine direction, hence no neighbours: it gets no hits (a text with no known
    // word encodes to zero with static models). Every other query is searched.
    std::vector<std::size_t> rows;
    Matrix<float> nonzero;
    MatrixView<float> searchable = qs.vectors.view();
    if (info.metric == simd::Metric::kCosine) {
        for (std::size_t q = 0; q < nq; ++q) {
            const float* v = qs.vectors.row_ptr(q);
            if (std::any_of(v, v + qs.vectors.dim, [](float x) { return x != 0.0f; })) rows.push_back(q);
        }
        if (rows.size() < nq) {
            nonzero = Matrix<float>(rows.size(), qs.vectors.dim);
            for (std::size_t i = 0; i < rows.size(); ++i) {
                std::copy_n(qs.vectors.row_ptr(rows[i]), qs.vectors.dim, nonzero.row_ptr(i));
            }
            searchable = nonzero.view();
        }
    }
    if (searchable.rows == nq) {  // every query is searched: row i is query i
        rows.resize(nq);
        for (std::size_t q = 0; q < nq; ++q) rows[q] = q;
    }
    auto query_name = [&](std::size_t q) { return q < qs.ids.size() ? qs.ids[q] : std::to_string(q); };
    const std::size_t skipped = nq - searchable.rows;
    if (skipped > 0) {
        std::size_t first = 0;
        while (first < rows.size() && rows[first] == first) ++first;
        warn("search", fmt::format("{} of {} queries are zero vectors (no cosine direction) and get no hits, the "
                                   "first is query '{}'", skipped, nq, query_name(first)));
    }
    QUIVER_ASSIGN_OR_RETURN(QueryFilters filtered, load_filters(o, nq));
    Matrix<std::int32_t> gt;
    if (!o.truth.empty()) {
        QUIVER_ASSIGN_OR_RETURN(gt, storage::read_ivecs(o.truth));
        QUIVER_TRY(check_truth(*idx, searchable, rows, nq, gt, o, filtered.any));
    }

    // Chunks of queries: a progress line between them, and bounded result memory per call.
    // --latency: one query per call on one thread, each call timed (p50/p99/max in the summary).
    const std::size_t kChunk = o.latency ? 1 : 1024;
    std::vector<double> latencies;
    if (o.latency) latencies.reserve(searchable.rows);
    index::SearchResults r;
    r.num_queries = nq;
    r.k = o.k;
    r.labels.assign(nq * o.k, kNoLabel);
    r.distances.assign(nq * o.k, 0.0f);
    const std::size_t ns = searchable.rows;
    ProgressBar bar("searching", ns, "queries");
    double search_seconds = 0;
    for (std::size_t q0 = 0; q0 < ns; q0 += kChunk) {
        const std::size_t n = std::min(kChunk, ns - q0);
        const auto t0 = std::chrono::steady_clock::now();
        index::SearchResults part;
        if (filtered.any) {
            QUIVER_ASSIGN_OR_RETURN(part, filtered.search(*idx, searchable.slice(q0, n), rows, q0, o));
        } else {
            QUIVER_ASSIGN_OR_RETURN(part, idx->search(searchable.slice(q0, n), {.k = o.k,
                                                                              .ef = o.ef,
                                                                              .threads = o.latency ? 1 : o.threads,
                                                                              .nprobe = o.nprobe,
                                                                              .rescore = o.rescore}));
        }
        const double call_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        search_seconds += call_seconds;
        if (o.latency) latencies.push_back(call_seconds);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t at = rows[q0 + i] * o.k;
            std::copy_n(part.labels.begin() + static_cast<std::ptrdiff_t>(i * o.k), o.k,
                        r.labels.begin() + static_cast<std::ptrdiff_t>(at));
            std::copy_n(part.distances.begin() + static_cast<std::ptrdiff_t>(i * o.k), o.k,
                        r.distances.begin() + static_cast<std::ptrdiff_t>(at));
        }
        bar.add(n);
    }
    bar.finish();

    std::string out;
    if (o.json) {
        json::Value root = json::Value::array();
        for (std::size_t q = 0; q < nq; ++q) {
            json::Value hits = json::Value::array();
            for (std::size_t j = 0; j < r.count(q); ++j) {
                json::Value h = json::Value::object();
                h.set("id", json::Value::string(idx->label_name(r.label(q, j))));
                h.set("distance", json::Value::number(r.distance(q, j)));
                hits.as_array().push_back(std::move(h));
            }
            json::Value row = json::Value::object();
            row.set("query", json::Value::string(query_name(q)));
            row.set("hits", std::move(hits));
            if (filtered.any) row.set("explain", filtered.explain(q));
            root.as_array().push_back(std::move(row));
        }
        out = json::dump(root, true) + "\n";
    } else {
        out = "query\trank\tid\tdistance\n";
        for (std::size_t q = 0; q < nq; ++q) {
            for (std::size_t j = 0; j < r.count(q); ++j) {
                out += fmt::format("{}\t{}\t{}\t{:.6g}\n", query_name(q), j + 1, idx->label_name(r.label(q, j)),
                                   r.distance(q, j));
            }
        }
    }
    QUIVER_TRY(write_text(o.output, out));
    if (!o.trec.empty()) {
        // TREC runs rank by score, larger first: the score is the negated distance.
        eval::Run run;
        for (std::size_t q = 0; q < nq; ++q) {
            auto& list = run[query_name(q)];
            for (std::size_t j = 0; j < r.count(q); ++j) {
                list.push_back({idx->label_name(r.label(q, j)), -static_cast<double>(r.distance(q, j))});
            }
        }
        QUIVER_TRY(eval::write_run(o.trec, run, o.tag));
    }

    const double qps = search_seconds > 0 ? static_cast<double>(ns) / search_seconds : 0.0;
    std::string summary = fmt::format("{} queries in {:.3f} s = {:.0f} QPS (k={}, ef={}, threads={})", ns,
                                      search_seconds, qps, o.k,
                                      info.kind == "hnsw" ? std::to_string(o.ef == 0 ? std::max<std::size_t>(o.k, 64) : o.ef)
                                                          : std::string("n/a"),
                                      o.latency ? std::size_t{1} : resolve_threads(o.threads));
    if (!latencies.empty()) {
        // Nearest-rank percentiles of the per-query times.
        std::sort(latencies.begin(), latencies.end());
        auto pct = [&](double p) {
            const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(latencies.size())));
            return latencies[std::min(latencies.size() - 1, rank == 0 ? 0 : rank - 1)] * 1e3;
        };
        summary += fmt::format("; latency p50 {:.3f} ms, p99 {:.3f} ms, max {:.3f} ms", pct(0.50), pct(0.99),
                               latencies.back() * 1e3);
    }
    if (info.kind == "ivf" || info.kind == "flat-codes") {
        summary += fmt::format(" (nprobe={}, rescore={})", o.nprobe == 0 ? std::string("default") : std::to_string(o.nprobe),
                               o.rescore == index::SearchParams::kRescoreDefault ? std::string("default")
                                                                                 : std::to_string(o.rescore));
    }
    if (!o.truth.empty()) {
        // Recall@k against exact neighbours; labels are row numbers of the indexed file.
        double total = 0;
        for (const std::size_t q : rows) {
            std::size_t hit = 0;
            for (std::size_t j = 0; j < r.count(q); ++j) {
                for (std::size_t t = 0; t < o.k; ++t) {
                    hit += static_cast<std::uint64_t>(gt.row_ptr(q)[t]) == to_int(r.label(q, j));
                }
            }
            total += static_cast<double>(hit) / static_cast<double>(o.k);
        }
        summary = fmt::format("recall@{} = {:.4f} over {} queries; {}", o.k,
                              ns > 0 ? total / static_cast<double>(ns) : 0.0, ns, summary);
    }
    if (!o.trec.empty()) summary += fmt::format("; TREC run -> {}", o.trec);
    if (filtered.any) summary += "; filtered: " + filtered.summary();
    std::fprintf(stderr, "%s\n", summary.c_str());
    return {};
}

void add_search_command(CLI::App& app) {
    auto o = std::make_shared<SearchOptions>();
    auto* sub = app.add_subcommand("search", "Search a dense index with query vectors");
    sub->footer(
        "Prints one line per hit: query, rank, id, distance (tab-separated; --json for a JSON array), and a\n"
        "summary on stderr: queries, seconds, QPS (and recall@k with --truth; per-query p50/p99/max latency\n"
        "with --latency, which searches one query per call on one thread). Ids are the document ids the\n"
        "index was built with (JSONL ids, or the ids file beside .npy/.fvecs); query ids likewise.\n"
        "Distances: squared L2 for l2, 1 - inner product for ip and cosine; smaller is closer.\n"
        "--trec writes a TREC run (qid Q0 docid rank score tag, score = -distance) for `quiver eval --run-file`.\n"
        "--truth is checked before searching: its size, its ids, and that it is exact under the index's metric\n"
        "(with filters it holds the filtered ground truth; only its size and ids are checked).\n"
        "--filter '{\"field\": \"lang\", \"eq\": \"en\"}' restricts every query (see docs/cli.md); the planner picks\n"
        "an exact scan, ACORN or the post-filter walk per query (--json shows its choice and reason).\n"
        "Example: quiver search --index-file glove.qvr --queries query.fvecs --k 10 --ef 128\n"
        "A learned-sparse index (from `quiver build --kind sparse`) is searched by `quiver sparse-search`;\n"
        "`quiver search --index-file X.seis ...` forwards there (see `quiver sparse-search --help`).");
    sub->add_option("--index-file", o->index_file, "Index file written by `quiver build`")->required();
    sub->add_option("-q,--queries", o->queries, "Query vectors (.fvecs .npy .jsonl ...)")->required();
    sub->add_option("-k,--k", o->k, "Neighbours per query")->capture_default_str();
    sub->add_option("--ef", o->ef, "HNSW beam width (0 = max(k, 64)); ignored by flat")->capture_default_str();
    sub->add_option("--nprobe", o->nprobe, "IVF lists probed (0 = the index's default)");
    sub->add_option("--rescore", o->rescore,
                    "Indexes over codes: candidates re-scored in float32 (0 = none; default: flat/IVF 10k, or by "
                    "RaBitQ's error bound; HNSW min(ef, max(2k, 32)) for SQ8, else min(ef, max(4k, 32)))");
    sub->add_option("--threads", o->threads, "Threads over queries (0 = all cores)")->capture_default_str();
    sub->add_option("--max-queries", o->max_queries, "Use only the first N queries (0 = all)");
    sub->add_option("-o,--output", o->output, "Write results here instead of stdout");
    sub->add_option("--trec", o->trec, "Also write the results as a TREC run file here");
    sub->add_option("--tag", o->tag, "Run tag of --trec")->capture_default_str();
    sub->add_option("--truth", o->truth, "Exact neighbours (.ivecs, e.g. from `quiver gt`): print recall@k to stderr");
    sub->add_flag("--json", o->json, "JSON output (stdout, or --output); with a filter each query has an \"explain\"");
    sub->add_flag("--vectors-on-disk", o->vectors_on_disk,
                  "HNSW on codes and flat/IVF code indexes: leave the float32 vectors in the file, read them "
                  "with pread for the re-score");
    sub->add_flag("--latency", o->latency,
                  "Search one query per call on one thread and report per-query latency (p50, p99, max)");
    sub->add_flag("--verify", o->verify,
                  "Check every section's checksum (vectors, codes, graph) when opening, not on first use");
    sub->add_option("--filter", o->filter,
                    "Filter JSON as in the collection API, on the attributes the index was built with "
                    "(`quiver build --attributes`); JSONL queries may instead carry a \"filter\" member per line");
    sub->add_option("--filter-strategy", o->strategy, "auto (the planner) | exact | acorn | post_filter")
        ->capture_default_str();
    set_status_action(sub, "search", [o] { return run_search(*o); });
}

const CommandRegistrar kRegister{20, &add_search_command};

}  // namespace
}  // namespace quiver::cli
