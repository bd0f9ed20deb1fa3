// Private to tests/multivector: word-like multi-vector data and an independent MaxSim reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/multivector/token_store.h"

namespace quiver::multivector::testdata {

/// A vocabulary of `words` unit vectors in `dim` dimensions, grouped in `topics` clusters.
Matrix<float> vocabulary(std::size_t words, std::size_t dim, std::size_t topics, std::uint64_t seed);
/// `n` sets of unit token vectors, each [min_tokens, max_tokens] rows drawn from `vocab` (a topic's
/// words mostly) plus a little noise, as per-word embeddings of sentences are.
std::vector<Matrix<float>> sets(const Matrix<float>& vocab, std::size_t topics, std::size_t n, std::size_t min_tokens,
                                std::size_t max_tokens, std::uint64_t seed);
/// A store of `docs` (any codec).
TokenStore store(const std::vector<Matrix<float>>& docs, std::size_t dim, TokenCodec codec);
/// sum_i max_j <q_i, d_j> in double precision (plain loops; no SIMD, no BLAS).
double chamfer_reference(const Matrix<float>& q, const float* doc, std::size_t tokens);
/// Unit vectors, iid Gaussian directions.
Matrix<float> random_unit(std::size_t rows, std::size_t dim, std::uint64_t seed);

}  // namespace quiver::multivector::testdata
