// quiver search: index file + query vectors -> nearest neighbours (TSV or JSON).
#include <fmt/format.h>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/index/vector_index.h"
#include "quiver/storage/vector_io.h"

namespace quiver::cli {
namespace {

struct SearchOptions {
    std::string index, queries, output = "-", truth;
    std::size_t k = 10, ef = 0, threads = 0, max_queries = 0;
    bool json = false;
};

Status run_search(const SearchOptions& o) {
    QUIVER_ASSIGN_OR_RETURN(auto idx, index::open_index(o.index));
    QUIVER_ASSIGN_OR_RETURN(storage::VectorSet qs, storage::read_vectors(o.queries, {.max_rows = o.max_queries}));
    const auto info = idx->info();
    if (qs.vectors.dim != info.dim) {
        return invalid_argument(fmt::format("queries in '{}' have dimension {}, the index '{}' has {}", o.queries,
                                            qs.vectors.dim, o.index, info.dim));
    }
    QUIVER_ASSIGN_OR_RETURN(index::SearchResults r,
                            idx->search(qs.vectors, {.k = o.k, .ef = o.ef, .threads = o.threads}));
    auto query_name = [&](std::size_t q) { return q < qs.ids.size() ? qs.ids[q] : std::to_string(q); };
    std::string out;
    if (o.json) {
        json::Value root = json::Value::array();
        for (std::size_t q = 0; q < r.num_queries; ++q) {
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
            root.as_array().push_back(std::move(row));
        }
        out = json::dump(root, true) + "\n";
    } else {
        out = "query\trank\tid\tdistance\n";
        for (std::size_t q = 0; q < r.num_queries; ++q) {
            for (std::size_t j = 0; j < r.count(q); ++j) {
                out += fmt::format("{}\t{}\t{}\t{:.6g}\n", query_name(q), j + 1, idx->label_name(r.label(q, j)),
                                   r.distance(q, j));
            }
        }
    }
    QUIVER_TRY(write_text(o.output, out));
    if (!o.truth.empty()) {
        // Recall@k against exact neighbours; labels are row numbers of the indexed file.
        QUIVER_ASSIGN_OR_RETURN(auto gt, storage::read_ivecs(o.truth));
        if (gt.rows < r.num_queries || gt.dim < o.k) {
            return invalid_argument(fmt::format("truth '{}' has {} rows of {} ids; need {} rows of at least {}",
                                                o.truth, gt.rows, gt.dim, r.num_queries, o.k));
        }
        double total = 0;
        for (std::size_t q = 0; q < r.num_queries; ++q) {
            std::size_t hit = 0;
            for (std::size_t j = 0; j < r.count(q); ++j) {
                for (std::size_t t = 0; t < o.k; ++t) {
                    hit += static_cast<std::uint64_t>(gt.row_ptr(q)[t]) == to_int(r.label(q, j));
                }
            }
            total += static_cast<double>(hit) / static_cast<double>(o.k);
        }
        std::fprintf(stderr, "recall@%zu = %.4f over %zu queries\n", o.k, total / static_cast<double>(r.num_queries),
                     r.num_queries);
    }
    return {};
}

void add_search_command(CLI::App& app) {
    auto o = std::make_shared<SearchOptions>();
    auto* sub = app.add_subcommand("search", "Search a dense index with query vectors");
    sub->footer(
        "Prints one line per hit: query, rank, id, distance (tab-separated; --json for a JSON array).\n"
        "Distances: squared L2 for l2, 1 - inner product for ip and cosine; smaller is closer.\n"
        "Example: quiver search --index glove.qvr --queries query.fvecs --k 10 --ef 128\n"
        "A learned-sparse index (from `quiver build --kind sparse`) is searched by `quiver sparse-search`;\n"
        "`quiver search --index X.seis ...` forwards there (see `quiver sparse-search --help`).");
    sub->add_option("--index", o->index, "Index file written by `quiver build`")->required();
    sub->add_option("-q,--queries", o->queries, "Query vectors (.fvecs .npy .jsonl ...)")->required();
    sub->add_option("-k,--k", o->k, "Neighbours per query")->capture_default_str();
    sub->add_option("--ef", o->ef, "HNSW beam width (0 = max(k, 64)); ignored by flat")->capture_default_str();
    sub->add_option("--threads", o->threads, "Threads over queries (0 = all cores)")->capture_default_str();
    sub->add_option("--max-queries", o->max_queries, "Use only the first N queries (0 = all)");
    sub->add_option("-o,--output", o->output, "Write results here instead of stdout");
    sub->add_option("--truth", o->truth, "Exact neighbours (.ivecs, e.g. from `quiver gt`): print recall@k to stderr");
    sub->add_flag("--json", o->json, "JSON output");
    set_action(sub, [o] {
        Status s = run_search(*o);
        return s.ok() ? 0 : report("search", s.error());
    });
}

const CommandRegistrar kRegister{20, &add_search_command};

}  // namespace
}  // namespace quiver::cli
