/// @file metrics.h
/// @brief Retrieval metrics with trec_eval / pytrec_eval semantics, plus BEIR's MRR@k.
///
/// Per query (R = documents with rel >= relevance_level in the qrels):
///   - ranking: documents sorted by score descending, ties by document id descending (byte-wise), as
///     trec_eval's te_form_res_rels; supplied ranks are ignored;
///   - ndcg@k (trec_eval ndcg_cut): linear gain rel, discount log2(rank + 1); ideal DCG over the
///     qrels' positive relevance values sorted descending, cut at k; 0 when the ideal is 0;
///   - recall@k: relevant in top k / R;  map@k (map_cut): sum of P@i at relevant ranks i <= k, / R;
///   - p@k: relevant in top k / k (always k);  recip_rank: 1 / rank of the first relevant, no cutoff;
///   - mrr@k (BEIR custom_metrics.mrr): stable sort by score only (ties keep run order), 1 / rank of
///     the first relevant within k, averaged over ALL qrels queries, including those with no run.
/// Averaging (pytrec_eval): every other metric averages over queries present in both run and qrels;
/// run queries without judgments are skipped, and a query with an empty result list counts as absent
/// (as it would in a run file). With `all_queries` (trec_eval -c) qrels queries missing
/// from the run count as 0. `ignore_identical_ids` (BEIR default) drops run entries whose document id
/// equals the query id before ranking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/eval/dataset.h"

namespace quiver::eval {

struct RunEntry {
    std::string doc_id;
    double score;
};

/// query id -> retrieved documents (any order; each document at most once per query).
using Run = std::map<std::string, std::vector<RunEntry>>;

enum class MetricKind : std::uint8_t { kNdcg, kRecall, kMap, kPrecision, kRecipRank, kMrr };

struct MetricSpec {
    MetricKind kind;
    std::size_t k = 0;  ///< cutoff; 0 means none (only for recip_rank)
    /// "ndcg@10", "recall@100", "map@100", "p@10", "mrr@10", "recip_rank".
    std::string name() const;
};

/// Parses one name: ndcg@K, recall@K, map@K, p@K (or precision@K), mrr@K, recip_rank.
/// "map" without a cutoff is map over the whole run (k = 0 means no cutoff for every metric).
[[nodiscard]] Result<MetricSpec> parse_metric(std::string_view name);
/// Parses a comma-separated list; duplicates removed, order kept.
[[nodiscard]] Result<std::vector<MetricSpec>> parse_metrics(std::string_view list);

struct EvalOptions {
    int relevance_level = 1;
    bool ignore_identical_ids = true;
    bool all_queries = false;  ///< trec_eval -c
};

struct MetricResult {
    MetricSpec spec;
    double mean = 0.0;
    std::size_t num_queries = 0;               ///< the denominator of the mean
    std::map<std::string, double> per_query;   ///< query id -> value
};

struct EvalReport {
    std::vector<MetricResult> metrics;  ///< in the order requested
    std::size_t queries_evaluated = 0;  ///< in both run and qrels
    std::size_t queries_in_qrels = 0;
    std::size_t run_queries_skipped = 0;  ///< run queries without judgments
};

/// Evaluates `run` against `qrels`. kInvalidArgument for a document repeated within one query.
[[nodiscard]] Result<EvalReport> evaluate(const Qrels& qrels, const Run& run, const std::vector<MetricSpec>& metrics,
                                          const EvalOptions& options = {});

}  // namespace quiver::eval
