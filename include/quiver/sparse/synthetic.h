/// @file synthetic.h
/// @brief A generator of SPLADE-like sparse collections and correlated queries, so learned-sparse
/// retrieval can be benchmarked at a million documents without a GPU encoder. docs/seismic.md lists the
/// statistics it produces (measured, not just intended).
///
/// Model (all randomness from `seed`; output independent of the thread count):
///   - Vocabulary of `vocab` ids (30,522 = BERT WordPiece by default). Background term popularity is
///     Zipfian with exponent `zipf_s` over a random permutation of the ids.
///   - `topics` topics, each a list of `topic_terms` terms drawn without replacement from a flatter
///     Zipf (exponent 0.5, skipping the 50 most popular terms), with a within-topic centrality order.
///   - A document has one primary topic and one or two secondary topics. It has U[min_doc_nnz,
///     max_doc_nnz] distinct terms: a U[0.45, 0.65] share drawn from its topics (70% primary, by
///     within-topic Zipf 0.8 on centrality) and the rest from the background. Weights are log-normal:
///     topic terms exp(N(0.1, 0.5)) scaled by centrality, background terms exp(N(-1.6, 0.7)), so a
///     small share of components holds most of the L1 mass, as in SPLADE.
///   - A query is drawn from the topic model, not from any document: a primary topic (uniform) and,
///     one time in three, a secondary one (35% of its topic terms); U[min_query_nnz, max_query_nnz]
///     distinct terms: U[3, 8] head terms (within-topic Zipf 0.8 on centrality, weights
///     exp(N(0.4, 0.4)) scaled by centrality), then topic terms up to 45% of the query with weights
///     exp(N(-0.5, 0.5)) x centrality, then low-weight background "expansion" terms exp(N(-2.0, 0.6)).
///     So relevant documents share topic terms with a query but no document's top terms are copied.
/// Terms are integer ids (TermMode::kInteger); document ids are "0".."N-1", query ids "q0"...
#pragma once

#include <cstdint>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/sparse/sparse_vector.h"

namespace quiver::sparse {

struct SyntheticParams {
    std::size_t docs = 100000;
    std::size_t queries = 1000;
    std::uint32_t vocab = 30522;
    /// 0 = clamp(docs / 500, 20, 2000).
    std::uint32_t topics = 0;
    std::uint32_t topic_terms = 200;
    double zipf_s = 1.0;
    std::uint32_t min_doc_nnz = 120, max_doc_nnz = 200;
    std::uint32_t min_query_nnz = 20, max_query_nnz = 50;
    std::uint64_t seed = 1;
    /// Generation threads; 0 = all cores.
    std::size_t threads = 0;
};

struct SyntheticData {
    SparseCollection docs;
    QuerySet queries;
    std::vector<std::uint32_t> query_topic;          ///< each query's primary topic
    std::vector<std::vector<TermId>> topics;         ///< topic -> its terms, most central first
};

/// Generates documents and queries. kInvalidArgument for inconsistent parameters (empty ranges, more
/// terms per vector than the vocabulary, topic_terms > vocab).
[[nodiscard]] Result<SyntheticData> generate_synthetic(const SyntheticParams& params);

}  // namespace quiver::sparse
