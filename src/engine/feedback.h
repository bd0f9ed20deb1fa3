// Private to engine: pseudo-relevance feedback of one search clause (QueryClause::prf, collection.h),
// the operators of pipeline/prf.h applied to a snapshot's documents.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/collection_state.h"
#include "quiver/pipeline/prf.h"
#include "quiver/sparse/bm25_index.h"

namespace quiver::engine {

/// The live document with this id in `snap` (the newest version), or nullopt.
std::optional<LiveRef> find_live(const Snapshot& snap, std::string_view id);

/// A first-round hit of the clause, best first.
struct FeedbackHit {
    LiveRef ref;
    double score = 0.0;
};

/// Collection-wide BM25 statistics of distinct analysed terms, with boosts 1 (what search scores with).
using TextStatsFn = std::function<Result<sparse::Bm25QueryStats>(std::span<const std::string>)>;

/// The expanded query of a text clause (RM3 or lexical Rocchio, `spec.method`) from its first-round
/// hits: statistics of the expanded terms whose boosts are their weights. When the expansion is empty
/// (no query term and no feedback term), the original query's statistics.
Result<sparse::Bm25QueryStats> expanded_text_query(const Snapshot& snap, const FieldSpec& field,
                                                   std::span<const std::string> query_terms,
                                                   std::span<const FeedbackHit> first, const pipeline::PrfSpec& spec,
                                                   const TextStatsFn& stats_of);

/// Rocchio of a vector clause: alpha * query + beta * mean of the feedback documents' stored vectors
/// of `field` (documents without the vector are skipped).
Result<std::vector<float>> rocchio_query(const Snapshot& snap, const FieldSpec& field, std::span<const float> query,
                                         std::span<const FeedbackHit> first, const pipeline::PrfSpec& spec);

}  // namespace quiver::engine
