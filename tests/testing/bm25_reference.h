// The reference of the SciFact parity tests: the run `quiver eval --retriever bm25` computes (one
// Bm25Index over title + text, query ids excluded from their own lists, as BEIR does) and nDCG@10.
// Header-only: the test binaries that include it link eval and sparse; quiver_testing does not.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/eval/run_file.h"
#include "quiver/sparse/bm25_index.h"

namespace quiver::testing {

/// Top `depth` BM25 hits per query of `ds`, as `quiver eval --retriever bm25` ranks them.
inline eval::Run bm25_reference_run(const eval::Dataset& ds, std::size_t depth) {
    eval::Run run;
    std::vector<sparse::Bm25Document> views;
    for (const auto& d : ds.documents) views.push_back({d.id, d.title, d.text});
    auto index = sparse::Bm25Index::build(views, {});
    EXPECT_TRUE(index);
    if (!index) return run;
    auto searcher = sparse::Bm25Searcher::create(*index);
    EXPECT_TRUE(searcher);
    if (!searcher) return run;
    for (const auto& q : ds.queries) {
        auto& list = run[q.id];
        for (const auto& h : searcher->search(q.text, depth + 1)) {
            const std::string id(index->doc_id(h.doc));
            if (id == q.id || list.size() == depth) continue;
            list.push_back({id, static_cast<double>(h.score)});
        }
    }
    return run;
}

/// Mean nDCG@10 of `run` against the qrels of `ds`.
inline double ndcg10(const eval::Dataset& ds, const eval::Run& run) {
    auto metrics = eval::parse_metrics("ndcg@10");
    EXPECT_TRUE(metrics);
    auto report = eval::evaluate(ds.qrels, run, *metrics);
    EXPECT_TRUE(report);
    return report ? report->metrics[0].mean : 0.0;
}

}  // namespace quiver::testing
