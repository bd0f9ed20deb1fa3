// Codecs against brute force: reconstruction error, estimator = distance to the reconstruction (or
// within its bound), ranking quality, persistence, and bad input.
#include "quiver/index/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "index/index_testing.h"
#include "quiver/simd/kernels.h"
#include "quiver/storage/file_format.h"
#include "testing/testing.h"

namespace quiver::index {
namespace {

using simd::Metric;

Matrix<float> clustered(std::size_t n, std::size_t dim, std::uint64_t seed, bool normalise) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd;
    Matrix<float> centres(16, dim);
    for (auto& v : centres.values) v = nd(rng) * 3.0f;
    Matrix<float> m(n, dim);
    for (std::size_t i = 0; i < n; ++i) {
        const float* c = centres.row_ptr(rng() % 16);
        for (std::size_t j = 0; j < dim; ++j) m.row_ptr(i)[j] = c[j] + nd(rng);
        if (normalise) simd::normalize(m.row_ptr(i), dim);
    }
    return m;
}

double true_distance(const float* a, const float* b, std::size_t d, Metric metric) {
    double s = 0;
    for (std::size_t j = 0; j < d; ++j) {
        s += metric == Metric::kL2 ? (double(a[j]) - b[j]) * (double(a[j]) - b[j]) : double(a[j]) * b[j];
    }
    return metric == Metric::kL2 ? s : 1.0 - s;
}

std::unique_ptr<Codec> trained(const std::string& spec, const Matrix<float>& data, Metric metric) {
    auto parsed = CodecSpec::parse(spec);
    EXPECT_TRUE(parsed.ok()) << spec;
    auto codec = Codec::create(*parsed, data.dim, metric, 7);
    EXPECT_TRUE(codec.ok()) << spec << ": " << codec.error().message();
    EXPECT_TRUE((*codec)->train(data).ok());
    return std::move(*codec);
}

TEST(CodecSpec, ParsesAndPrintsEveryCodec) {
    for (const char* s : {"none", "sq8", "sq4", "pq16x8", "pq8x4", "rabitq1", "rabitq4", "binary1", "binary3"}) {
        auto c = CodecSpec::parse(s);
        ASSERT_TRUE(c.ok()) << s;
        EXPECT_EQ(c->to_string(), s);
    }
    for (const char* s : {"sq16", "pq", "pq0x8", "pq8x5", "pq8", "rabitq3", "rabitq", "binary0", "binary9", "lz4",
                          "pq8x", "pqx8", "sq8 "}) {
        auto c = CodecSpec::parse(s);
        ASSERT_FALSE(c.ok()) << s;
        EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
    }
}

TEST(ScalarQuantisation, ReconstructionErrorIsAtMostHalfAStepPerDimension) {
    for (const char* spec : {"sq8", "sq4"}) {
        const auto data = clustered(2000, 37, 1, false);
        auto codec = trained(spec, data, Metric::kL2);
        EXPECT_EQ(codec->code_size(), std::string(spec) == "sq8" ? 37u : 19u);
        std::vector<std::uint8_t> codes(data.rows * codec->code_size());
        codec->encode(data, codes.data());
        std::vector<float> back(data.rows * data.dim);
        codec->decode(codes.data(), data.rows, back.data());
        // Range per dimension, from the data itself (the training sample).
        for (std::size_t j = 0; j < data.dim; ++j) {
            float lo = INFINITY, hi = -INFINITY;
            for (std::size_t i = 0; i < data.rows; ++i) {
                lo = std::min(lo, data.row_ptr(i)[j]);
                hi = std::max(hi, data.row_ptr(i)[j]);
            }
            const float half_step = (hi - lo) / (std::string(spec) == "sq8" ? 255.0f : 15.0f) / 2;
            for (std::size_t i = 0; i < data.rows; ++i) {
                ASSERT_LE(std::fabs(back[i * data.dim + j] - data.row_ptr(i)[j]), half_step * 1.001f + 1e-6f)
                    << spec << " row " << i << " dim " << j;
            }
        }
    }
}

// For SQ the estimate is the exact distance to the decoded vector, at every SIMD level the kernels run.
TEST(ScalarQuantisation, EstimateEqualsDistanceToReconstruction) {
    for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
        for (const char* spec : {"sq8", "sq4"}) {
            const auto data = clustered(500, 100, 2, metric != Metric::kL2);
            const auto queries = clustered(20, 100, 3, metric != Metric::kL2);
            auto codec = trained(spec, data, metric);
            std::vector<std::uint8_t> codes(data.rows * codec->code_size());
            codec->encode(data, codes.data());
            std::vector<float> back(data.rows * data.dim);
            codec->decode(codes.data(), data.rows, back.data());
            std::vector<float> est(data.rows);
            for (std::size_t q = 0; q < queries.rows; ++q) {
                auto e = codec->estimator(queries.row_ptr(q));
                e->scan(codes.data(), data.rows, est.data(), nullptr);
                for (std::size_t i = 0; i < data.rows; ++i) {
                    const double ref = true_distance(queries.row_ptr(q), back.data() + i * data.dim, data.dim, metric);
                    ASSERT_NEAR(est[i], ref, 1e-4 * (1 + std::fabs(ref))) << spec << " q " << q << " i " << i;
                    ASSERT_EQ(est[i], e->distance(codes.data() + i * codec->code_size()));
                }
            }
        }
    }
}

// Ranking quality against brute force on the original vectors: recall@10 of the top 10 by estimate
// (no rescore). Exact figures on a fixed seed.
double estimate_recall(const std::string& spec, Metric metric, std::size_t rescore) {
    const auto data = clustered(3000, 64, 4, metric != Metric::kL2);
    const auto queries = clustered(50, 64, 5, metric != Metric::kL2);
    auto codec = trained(spec, data, metric);
    std::vector<std::uint8_t> codes(data.rows * codec->code_size());
    codec->encode(data, codes.data());
    std::vector<std::uint8_t> packed(codec->packed_bytes(data.rows));
    codec->pack(codes.data(), data.rows, packed.data());
    const auto truth = testing::brute_force(data, queries, 10, metric);
    std::size_t hits = 0;
    std::vector<float> est(data.rows);
    for (std::size_t q = 0; q < queries.rows; ++q) {
        codec->estimator(queries.row_ptr(q))->scan(packed.data(), data.rows, est.data(), nullptr);
        std::vector<std::pair<double, std::uint64_t>> order;
        for (std::size_t i = 0; i < data.rows; ++i) order.emplace_back(est[i], i);
        std::partial_sort(order.begin(), order.begin() + static_cast<long>(rescore), order.end());
        std::vector<std::pair<double, std::uint64_t>> exact;
        for (std::size_t j = 0; j < rescore; ++j) {
            const auto i = order[j].second;
            exact.emplace_back(true_distance(queries.row_ptr(q), data.row_ptr(i), data.dim, metric), i);
        }
        std::sort(exact.begin(), exact.end());
        for (std::size_t j = 0; j < 10; ++j) {
            if (std::find(truth[q].begin(), truth[q].end(), exact[j].second) != truth[q].end()) ++hits;
        }
    }
    return static_cast<double>(hits) / (10.0 * queries.rows);
}

TEST(ScalarQuantisation, RankingAgainstBruteForce) {
    EXPECT_GE(estimate_recall("sq8", Metric::kL2, 10), 0.97);
    EXPECT_GE(estimate_recall("sq8", Metric::kInnerProduct, 10), 0.97);
    EXPECT_GE(estimate_recall("sq4", Metric::kL2, 10), 0.75);
    EXPECT_GE(estimate_recall("sq4", Metric::kL2, 40), 0.99);
    EXPECT_EQ(estimate_recall("sq8", Metric::kL2, 40), 1.0);
}

TEST(Codec, SaveLoadRoundTripGivesIdenticalEstimates) {
    testing::TempDir dir;
    const std::string path = dir.file("codec_roundtrip.qvr");
    for (const char* spec : {"sq8", "sq4"}) {
        const auto data = clustered(600, 48, 6, false);
        auto codec = trained(spec, data, Metric::kL2);
        {
            auto w = storage::FileWriter::create(path, storage::fourcc("TEST"), 1);
            ASSERT_TRUE(w.ok());
            ASSERT_TRUE(codec->save(*w).ok());
            ASSERT_TRUE(w->finish().ok());
        }
        auto file = storage::MappedFile::open(path);
        ASSERT_TRUE(file.ok());
        auto r = storage::open_payload(*file, storage::fourcc("TEST"), 1);
        ASSERT_TRUE(r.ok());
        auto loaded = Codec::load(*r);
        ASSERT_TRUE(loaded.ok()) << loaded.error().message();
        EXPECT_EQ((*loaded)->spec(), codec->spec());
        std::vector<std::uint8_t> a(data.rows * codec->code_size()), b(a.size());
        codec->encode(data, a.data());
        (*loaded)->encode(data, b.data());
        EXPECT_EQ(a, b);
        EXPECT_EQ(codec->estimator(data.row_ptr(0))->distance(a.data() + 5 * codec->code_size()),
                  (*loaded)->estimator(data.row_ptr(0))->distance(b.data() + 5 * codec->code_size()));
    }
}

TEST(Codec, RejectsBadTrainingInput) {
    auto codec = Codec::create(*CodecSpec::parse("sq8"), 8, Metric::kL2);
    ASSERT_TRUE(codec.ok());
    Matrix<float> wrong(10, 9);
    EXPECT_EQ((*codec)->train(wrong).error().code(), ErrorCode::kInvalidArgument);
    Matrix<float> empty(0, 8);
    EXPECT_EQ((*codec)->train(empty).error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(Codec::create(*CodecSpec::parse("sq8"), 0, Metric::kL2).error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(Codec::create(*CodecSpec::parse("none"), 8, Metric::kL2).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::index
