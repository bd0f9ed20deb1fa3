/// @file prf.h
/// @brief Pseudo-relevance feedback: RM3 and Rocchio for lexical queries, Rocchio for dense query
/// vectors. The operators work on what the first retrieval returned (term-frequency vectors of the
/// feedback documents and their scores, or their embeddings); running the expanded query is the
/// caller's (a BM25 index with per-term boosts, a vector index).
///
/// RM3 (Anserini's Rm3Reranker, Lavrenko & Croft's RM1 interpolated with the query):
///   - each of the top `fb_docs` documents gives a term vector of in-document term frequencies,
///     keeping terms the `keep` predicate accepts (Anserini: length >= 2, [a-z0-9]+ only, and
///     df / N <= 0.1); the vector is cut to its `fb_terms` largest entries (ties: term ascending);
///   - relevance model  P(t|R) ∝ sum_i tf_i(t) / |v_i|_1 * score_i over those documents (documents whose
///     cut vector has L1 norm <= 0.001 are skipped), cut to its `fb_terms` largest terms, L1-normalised;
///   - expanded query  w(t) = weight * q(t) + (1 - weight) * P(t|R), with q the query's term counts
///     L1-normalised.
/// Rocchio (lexical): w(t) = alpha * q(t) + beta * mean_i v_i(t), q and each v_i L2-normalised term
///   frequencies (the same `keep` filter), the feedback part cut to `fb_terms` terms before mixing.
/// Rocchio (dense):   q' = alpha * q + beta * mean of the top `fb_docs` document vectors (Li et al.,
///   TOIS 2023; pyserini's defaults alpha 0.9, beta 0.1), L2-normalised when `normalize`.
/// Result terms are sorted by weight descending, then term ascending.
///
/// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::pipeline {

enum class PrfMethod : std::uint8_t { kRm3, kRocchio };

struct PrfSpec {
    PrfMethod method = PrfMethod::kRm3;
    std::size_t fb_docs = 10;
    std::size_t fb_terms = 10;
    double weight = 0.5;  ///< RM3: the original query's weight
    double alpha = 1.0;   ///< Rocchio: the query's weight
    double beta = 0.75;   ///< Rocchio: the feedback documents' weight
};

/// Parses "rm3:fb_docs=10,fb_terms=10,weight=0.5" or "rocchio:fb_docs=3,alpha=0.9,beta=0.1" (every
/// parameter optional; defaults as in PrfSpec, Rocchio's fb_docs/fb_terms default 10, alpha 1,
/// beta 0.75 as Anserini's lexical Rocchio). kInvalidArgument on an unknown method or parameter, a
/// weight outside [0, 1], fb_docs or fb_terms of 0, or negative alpha/beta.
[[nodiscard]] Result<PrfSpec> parse_prf(std::string_view text);
std::string to_string(const PrfSpec& spec);
/// kInvalidArgument when `spec` is out of the ranges parse_prf accepts (fb_docs and fb_terms 1..1000,
/// weight in [0, 1], alpha and beta finite and >= 0): for specs built in code or from JSON.
[[nodiscard]] Status validate_prf(const PrfSpec& spec);

struct WeightedTerm {
    std::string term;
    double weight = 0.0;
};

/// One feedback document: its analysed tokens (with repeats) and its first-round score.
struct FeedbackDoc {
    std::span<const std::string> tokens;
    double score = 0.0;
};

/// Anserini's feedback-term filter: length >= 2, only [a-z0-9], and df / num_docs <= 0.1.
bool anserini_feedback_term(std::string_view term, std::uint64_t doc_freq, std::uint64_t num_docs) noexcept;

/// The expanded lexical query for `query_tokens` (analysed, repeats count) from `docs` (best first;
/// only the first spec.fb_docs are used). `keep(term)` filters feedback terms (query terms are kept).
std::vector<WeightedTerm> expand_query(std::span<const std::string> query_tokens, std::span<const FeedbackDoc> docs,
                                       const PrfSpec& spec, const std::function<bool(std::string_view)>& keep);

/// Dense Rocchio: alpha * query + beta * mean(docs[0 .. fb_docs)), each row `dim` floats; L2-normalised
/// when `normalize`. `docs` holds the feedback vectors row-major, best first.
std::vector<float> rocchio_vector(std::span<const float> query, std::span<const float> docs, std::size_t dim,
                                  const PrfSpec& spec, bool normalize);

}  // namespace quiver::pipeline
