#include "mv_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace quiver::multivector::testdata {
namespace {

void unit(float* v, std::size_t dim) {
    double n = 0;
    for (std::size_t j = 0; j < dim; ++j) n += static_cast<double>(v[j]) * v[j];
    const float inv = n > 0 ? static_cast<float>(1.0 / std::sqrt(n)) : 0.0f;
    for (std::size_t j = 0; j < dim; ++j) v[j] *= inv;
}

}  // namespace

Matrix<float> random_unit(std::size_t rows, std::size_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    Matrix<float> m(rows, dim);
    for (auto& x : m.values) x = g(rng);
    for (std::size_t r = 0; r < rows; ++r) unit(m.row_ptr(r), dim);
    return m;
}

Matrix<float> vocabulary(std::size_t words, std::size_t dim, std::size_t topics, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    Matrix<float> centres = random_unit(topics, dim, seed + 1);
    Matrix<float> v(words, dim);
    for (std::size_t w = 0; w < words; ++w) {
        const float* c = centres.row_ptr(w % topics);
        for (std::size_t j = 0; j < dim; ++j) v.row_ptr(w)[j] = c[j] + 0.6f * g(rng);
        unit(v.row_ptr(w), dim);
    }
    return v;
}

std::vector<Matrix<float>> sets(const Matrix<float>& vocab, std::size_t topics, std::size_t n, std::size_t min_tokens,
                                std::size_t max_tokens, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    std::uniform_int_distribution<std::size_t> len(min_tokens, max_tokens);
    const std::size_t per_topic = vocab.rows / topics;
    std::vector<Matrix<float>> out;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t t = len(rng);
        const std::size_t topic = rng() % topics;
        Matrix<float> m(t, vocab.dim);
        for (std::size_t r = 0; r < t; ++r) {
            // Three words in four from the set's topic, the rest from anywhere (function words).
            const std::size_t w = rng() % 4 != 0 ? topic + topics * (rng() % per_topic) : rng() % vocab.rows;
            for (std::size_t j = 0; j < vocab.dim; ++j) m.row_ptr(r)[j] = vocab.row_ptr(w)[j] + 0.05f * g(rng);
            unit(m.row_ptr(r), vocab.dim);
        }
        out.push_back(std::move(m));
    }
    return out;
}

TokenStore store(const std::vector<Matrix<float>>& docs, std::size_t dim, TokenCodec codec) {
    TokenStoreBuilder b(dim, codec);
    for (const auto& d : docs) {
        EXPECT_TRUE(b.add(d.view()).ok());
    }
    return std::move(b).finish();
}

double chamfer_reference(const Matrix<float>& q, const float* doc, std::size_t tokens) {
    double total = 0;
    for (std::size_t i = 0; i < q.rows; ++i) {
        double best = -1e300;
        for (std::size_t j = 0; j < tokens; ++j) {
            double s = 0;
            for (std::size_t c = 0; c < q.dim; ++c) s += static_cast<double>(q.row_ptr(i)[c]) * doc[j * q.dim + c];
            best = std::max(best, s);
        }
        total += best;
    }
    return total;
}

}  // namespace quiver::multivector::testdata
