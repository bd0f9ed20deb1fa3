// Private to bench/bm25: what the BM25 benchmark measures for each engine (quiver and its peers).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "quiver/eval/dataset.h"

namespace quiver::bench::bm25 {

struct LexicalSettings {
    float k1 = 0.9f;
    float b = 0.4f;
    std::size_t k = 100;       ///< hits per query
    std::size_t repeat = 3;    ///< timed passes over all queries (after one warm-up pass)
    std::string work_dir;      ///< where index files are written (removed afterwards)
};

struct LexicalMeasurement {
    std::string engine;
    std::string analysis;       ///< a short description of the analysis chain
    double index_seconds = 0.0; ///< build + persist, single thread
    std::size_t index_bytes = 0;
    std::vector<double> latencies_ms;              ///< every timed query
    double search_seconds = 0.0;                   ///< sum over timed passes
    std::vector<std::vector<std::string>> run;     ///< run[i] = doc ids for query i, best first
    std::vector<std::vector<double>> scores;       ///< matching scores
};

/// Runs every query once as warm-up, then `settings.repeat` timed passes, filling the latencies,
/// the search time and (from the first timed pass) the run. `search(i, ids, scores)` answers query i.
template <class SearchFn>
void time_queries(const eval::Dataset& ds, const LexicalSettings& settings, LexicalMeasurement& out,
                  SearchFn&& search) {
    out.run.assign(ds.queries.size(), {});
    out.scores.assign(ds.queries.size(), {});
    for (std::size_t pass = 0; pass <= settings.repeat; ++pass) {
        for (std::size_t i = 0; i < ds.queries.size(); ++i) {
            std::vector<std::string> ids;
            std::vector<double> scores;
            const auto t0 = std::chrono::steady_clock::now();
            search(i, ids, scores);
            const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            if (pass == 0) continue;  // warm-up
            out.latencies_ms.push_back(ms);
            out.search_seconds += ms / 1000.0;
            if (pass == 1) {
                out.run[i] = std::move(ids);
                out.scores[i] = std::move(scores);
            }
        }
    }
}

/// Indexes and queries with Xapian (BM25Weight(k1, 0, 1, b, 0.5), TermGenerator + QueryParser with
/// the Porter stemmer, STEM_ALL and Lucene's stop words). Returns false with `error` set when Xapian
/// is not built in or fails.
bool run_xapian(const eval::Dataset& ds, const LexicalSettings& settings, LexicalMeasurement& out, std::string& error);

}  // namespace quiver::bench::bm25
