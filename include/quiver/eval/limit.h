/// @file limit.h
/// @brief The LIMIT test collection (Weller et al. 2025, algorithms.md s6) generated at any size, and
/// the free-embedding experiment (critical number of documents for which every top-k set is
/// realisable by d-dimensional vectors).
///
/// Construction (the paper's notebook, "dense" qrel pattern):
///   1. n = the smallest number with C(n, k) >= num_queries (46 for 1,000 queries and k = 2);
///      query i's relevant documents are the i-th k-subset of documents 0..n-1 in lexicographic order.
///   2. Each query pops one distinct attribute (the shuffled query-attribute list); its text is
///      "Who likes {attribute}?" and every relevant document receives that attribute.
///   3. Every document is topped up to `items_per_doc` attributes by random draws from the filler
///      attributes, which share no word with any query attribute (so non-relevant documents never
///      mention a query's words, as in the paper).
///   4. Document text "{Name} likes A, B, ..., Y and Z." (attribute order shuffled), title empty,
///      id = the name.
/// Deviations (the paper's lists are in its notebook, which we do not copy): the query attributes are
/// the 1,000 of LIMIT-small's queries (../shared/data/limit-small), the filler attributes are words of
/// a vocabulary file (GloVe's, frequency ranks 2,000..), and names are "First Last" built from
/// syllables; the generation follows the paper's steps with our own seeded generator (splitmix64),
/// so a seed gives the same collection on every platform, not the released files.
///
/// Free embeddings: for each dimension d, query and document vectors are optimised directly (Adam,
/// lr 0.01, full-batch InfoNCE at temperature 0.1 with every document a candidate, vectors
/// L2-normalised after each step) for the dense k = 2 qrels of n documents (all C(n, 2) pairs); n is
/// solved when every query's top 2 is exactly its pair. The critical n is the largest n solved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/eval/dataset.h"

namespace quiver::eval {

struct LimitOptions {
    std::size_t num_docs = 50000;
    std::size_t num_queries = 1000;
    std::size_t relevant_per_query = 2;  ///< k
    std::size_t items_per_doc = 45;
    std::uint64_t seed = 42;
};

/// Attribute lists the generator draws from.
struct LimitVocabulary {
    std::vector<std::string> query_attributes;   ///< at least num_queries, distinct
    std::vector<std::string> filler_attributes;  ///< at least items_per_doc, none sharing a word with a query attribute
};

/// Query attributes from a LIMIT-style queries.jsonl ("Who likes X?"), filler words from a vocabulary
/// file (one word per line; alphabetic words of length >= 4 from rank 2,000 on, capitalised, that share
/// no word with a query attribute; at most `filler` of them).
[[nodiscard]] Result<LimitVocabulary> load_limit_vocabulary(const std::string& limit_queries_jsonl,
                                                            const std::string& vocab_file, std::size_t filler = 850);

/// Generates the collection (documents, queries, qrels; layout kBeir). kInvalidArgument when the
/// vocabulary is too small, num_docs < n, or items_per_doc < the attributes a relevant document needs.
[[nodiscard]] Result<Dataset> generate_limit(const LimitOptions& options, const LimitVocabulary& vocabulary);

/// Writes corpus.jsonl, queries.jsonl and qrels.jsonl (LIMIT's layout, which `load_dataset` reads) into `dir`.
[[nodiscard]] Status write_limit(const Dataset& dataset, const std::string& dir);

struct FreeEmbeddingOptions {
    std::size_t max_steps = 20000;
    std::size_t patience = 1000;   ///< stop when the loss has not improved for this many steps
    double learning_rate = 0.01;
    double temperature = 0.1;
    std::uint64_t seed = 1;
    std::size_t restarts = 3;      ///< random starts tried per n (seeds seed, seed + 1, ...); solved if any solves
};

/// True when vectors of dimension `dim` were found (from any of options.restarts random starts) whose
/// top-2 for every pair query of `n` documents is exactly its pair.
bool free_embedding_solves(std::size_t n, std::size_t dim, const FreeEmbeddingOptions& options);
/// The largest n (from 3, increasing) solved in `dim` dimensions, stopping at the first failure.
std::size_t free_embedding_critical_n(std::size_t dim, const FreeEmbeddingOptions& options, std::size_t max_n = 200);

}  // namespace quiver::eval
