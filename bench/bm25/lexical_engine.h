// Private to bench/bm25: what the BM25 benchmark measures for each engine (quiver and its peers).
#pragma once

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

/// Indexes and queries with Xapian (BM25Weight(k1, 0, 1, b, 0.5), TermGenerator + QueryParser with
/// the Porter stemmer, STEM_ALL and Lucene's stop words). Returns false with `error` set when Xapian
/// is not built in or fails.
bool run_xapian(const eval::Dataset& ds, const LexicalSettings& settings, LexicalMeasurement& out, std::string& error);

}  // namespace quiver::bench::bm25
