// Codecs against brute force: reconstruction error, estimator = distance to the reconstruction (or
// within its bound), ranking quality, persistence, and bad input.
#include "quiver/index/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "index/index_testing.h"
#include "quiver/simd/code_kernels.h"
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

// SQ8's integer query form (the HNSW walk's estimate): within its documented bound of the float
// estimate, the kernel sum equal to a 64-bit reference, and a ranking as good as the float one.
TEST(ScalarQuantisation, Int8QueryEstimateIsWithinItsBoundOfTheFloatEstimate) {
    const auto& kernels = simd::active_code_kernels();
    for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
        const bool unit = metric != Metric::kL2;
        const auto data = clustered(2000, 100, 6, unit);
        const auto queries = clustered(30, 100, 7, unit);
        auto codec = trained("sq8", data, metric);
        ASSERT_TRUE(codec->has_int8_query());
        EXPECT_EQ(codec->has_code_term(), metric == Metric::kL2);
        std::vector<std::uint8_t> codes(data.rows * codec->code_size());
        codec->encode(data, codes.data());
        const auto truth = testing::brute_force(data, queries, 10, metric);
        Int8Query iq;
        std::size_t hits = 0;
        for (std::size_t q = 0; q < queries.rows; ++q) {
            ASSERT_TRUE(codec->int8_query(queries.row_ptr(q), iq));
            ASSERT_EQ(iq.weights.size(), 100u);
            auto e = codec->estimator(queries.row_ptr(q));
            std::vector<std::pair<float, std::size_t>> order;
            for (std::size_t i = 0; i < data.rows; ++i) {
                const std::uint8_t* c = codes.data() + i * codec->code_size();
                std::int64_t dot = 0, csum = 0;
                for (std::size_t j = 0; j < 100; ++j) {
                    dot += std::int64_t{c[j]} * iq.weights[j];
                    csum += c[j];
                }
                ASSERT_EQ(kernels.u8s8_dot(c, iq.weights.data(), 100), dot);
                const double est = iq.bias + codec->code_term(c) - double(iq.scale) * double(dot);
                const double ref = e->distance(c);
                ASSERT_NEAR(est, ref, iq.scale / 2 * double(csum) + 1e-4 * (1 + std::fabs(ref)))
                    << simd::to_string(metric) << " q " << q << " i " << i;
                order.emplace_back(static_cast<float>(est), i);
            }
            std::partial_sort(order.begin(), order.begin() + 10, order.end());
            for (std::size_t j = 0; j < 10; ++j) {
                hits += std::find(truth[q].begin(), truth[q].end(), order[j].second) != truth[q].end();
            }
        }
        const double recall = static_cast<double>(hits) / (10.0 * queries.rows);
        std::printf("[ info ] sq8 int8 query, %s: recall@10 of the estimate alone %.3f\n",
                    std::string(simd::to_string(metric)).c_str(), recall);
        EXPECT_GE(recall, 0.9) << simd::to_string(metric);
    }
    // SQ4 has no integer form; an untrained SQ8 codec gives none either.
    const auto data = clustered(100, 16, 8, false);
    EXPECT_FALSE(trained("sq4", data, Metric::kL2)->has_int8_query());
    auto fresh = *Codec::create(*CodecSpec::parse("sq8"), 16, Metric::kL2);
    Int8Query iq;
    EXPECT_TRUE(fresh->has_int8_query());
    EXPECT_FALSE(fresh->int8_query(data.row_ptr(0), iq));
}

// scan_below: every code whose estimate is at most the limit, with scan's exact estimate, indices
// ascending; PQ fast-scan may add codes within one quantisation step above the limit, others none.
TEST(CodeEstimator, ScanBelowReturnsEveryCodeAtOrBelowTheLimitWithScansEstimate) {
    const auto data = clustered(1000, 32, 6, false);
    const auto queries = clustered(5, 32, 9, false);
    for (const char* spec : {"pq16x4", "pq8x4", "pq8x8", "sq8", "sq4", "rabitq1", "binary2", "none"}) {
        auto codec = trained(spec, data, Metric::kL2);
        std::vector<std::uint8_t> codes(data.rows * codec->code_size());
        codec->encode(data, codes.data());
        std::vector<std::uint8_t> packed(codec->packed_bytes(data.rows));
        codec->pack(codes.data(), data.rows, packed.data());
        std::vector<float> est(data.rows), got(data.rows);
        std::vector<std::uint32_t> sel(data.rows);
        for (std::size_t q = 0; q < queries.rows; ++q) {
            auto e = codec->estimator(queries.row_ptr(q));
            e->scan(packed.data(), data.rows, est.data(), nullptr);
            std::vector<float> sorted = est;
            std::sort(sorted.begin(), sorted.end());
            for (float limit : {sorted[0] - 1.0f, sorted[0], sorted[9], sorted[500], sorted.back(),
                                std::numeric_limits<float>::infinity()}) {
                const std::size_t m = e->scan_below(packed.data(), data.rows, limit, sel.data(), got.data());
                std::size_t below = 0, extra = 0;
                for (std::size_t i = 0; i < data.rows; ++i) below += est[i] <= limit ? 1 : 0;
                std::size_t j = 0;
                for (std::size_t i = 0; i < data.rows; ++i) {
                    const bool in = j < m && sel[j] == i;
                    if (est[i] <= limit) ASSERT_TRUE(in) << spec << " code " << i << " limit " << limit;
                    if (!in) continue;
                    ASSERT_EQ(got[j], est[i]) << spec << " code " << i;  // scan's estimate, bit for bit
                    if (est[i] > limit) ++extra;
                    ++j;
                }
                ASSERT_EQ(j, m) << spec << ": indices not ascending or out of range";
                EXPECT_EQ(m, below + extra);
                if (std::string(spec).find("x4") == std::string::npos) {
                    EXPECT_EQ(extra, 0u) << spec;
                } else {
                    EXPECT_LE(extra, 50u) << spec << " limit " << limit;  // within one step of the limit
                }
            }
        }
    }
}

// SQ8's integer query (SSE2, sixteen weights at a time, with a scalar tail) equals a plain scalar
// reference exactly: weights, scale and bias, every metric, dimensions 1 to 40 and around 64 and
// 128 (every tail length of both loops). The training sample pins each range exactly
// (min_j a multiple of 1/4, step_j = k/256, one dimension in eleven constant, so step 0), so the
// reference rebuilds the codec's parameters without reading them.
TEST(ScalarQuantisation, Int8QueryEqualsScalarReference) {
    std::mt19937_64 rng(41);
    std::normal_distribution<float> nd;
    std::size_t checked = 0, clamped_or_zero = 0;
    for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
        std::vector<std::size_t> dims;
        for (std::size_t d = 1; d <= 40; ++d) dims.push_back(d);
        for (std::size_t d : {63, 64, 65, 100, 127, 128, 129, 300}) dims.push_back(d);
        for (std::size_t d : dims) {
            std::vector<float> lo(d), step(d);
            for (std::size_t j = 0; j < d; ++j) {
                lo[j] = -1.0f - 0.25f * static_cast<float>(j % 7);
                step[j] = j % 11 == 10 ? 0.0f : static_cast<float>(1 + j % 5) / 256.0f;
            }
            Matrix<float> sample(12, d);
            for (std::size_t r = 0; r < sample.rows; ++r) {
                for (std::size_t j = 0; j < d; ++j) {
                    const float t = r == 0 ? 0.0f : r == 1 ? 255.0f : static_cast<float>(rng() % 256);
                    sample.row_ptr(r)[j] = lo[j] + step[j] * t;
                }
            }
            auto codec = trained("sq8", sample, metric);
            // The parameters are the ones pinned: a code of all k decodes to lo + k step exactly.
            std::vector<std::uint8_t> ones(d, 1);
            std::vector<float> back(d);
            codec->decode(ones.data(), 1, back.data());
            for (std::size_t j = 0; j < d; ++j) ASSERT_EQ(back[j], lo[j] + step[j]) << d << " " << j;
            const bool l2 = metric == Metric::kL2;
            Int8Query iq;
            for (int qi = 0; qi < 6; ++qi) {
                std::vector<float> q(d);
                for (std::size_t j = 0; j < d; ++j) {
                    q[j] = qi == 0 ? 0.0f : qi == 1 ? lo[j] : nd(rng) * (qi == 5 ? 40.0f : 2.0f);
                }
                ASSERT_TRUE(codec->int8_query(q.data(), iq));
                // The reference: four chains j mod 4 for the bias up to the last multiple of 4, the
                // rest in chain 0; one scale max |w| / 127; round to nearest, ties to even.
                float mx = 0;
                double part[4] = {0, 0, 0, 0};
                for (std::size_t j = 0; j < d; ++j) {
                    const float a = l2 ? q[j] - lo[j] : q[j];
                    mx = std::max(mx, std::fabs(a * step[j]));
                    const std::size_t chain = j < d / 4 * 4 ? j % 4 : 0;
                    part[chain] += l2 ? static_cast<double>(a) * a : static_cast<double>(q[j]) * lo[j];
                }
                const double bias = (part[0] + part[1]) + (part[2] + part[3]);
                const float unit = mx > 0 ? mx / 127.0f : 1.0f;
                const float inv = 1.0f / unit;
                ASSERT_EQ(iq.weights.size(), d);
                for (std::size_t j = 0; j < d; ++j) {
                    const float w = (l2 ? q[j] - lo[j] : q[j]) * step[j];
                    const auto expect = static_cast<int>(std::nearbyint(std::clamp(w * inv, -127.0f, 127.0f)));
                    ASSERT_EQ(int{iq.weights[j]}, expect) << simd::to_string(metric) << " d " << d << " q " << qi
                                                         << " j " << j;
                    clamped_or_zero += expect == 0 || expect == 127 || expect == -127;
                }
                EXPECT_EQ(iq.scale, l2 ? 2 * unit : unit) << d;
                EXPECT_EQ(iq.bias, l2 ? static_cast<float>(bias) : 1.0f - static_cast<float>(bias)) << d;
                ++checked;
            }
        }
    }
    EXPECT_EQ(checked, 3u * 48u * 6u);
    EXPECT_GT(clamped_or_zero, 1000u);
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

TEST(Codecs, RankingAgainstBruteForceWithRescore) {
    // recall@10 after re-scoring the best 100 of 3000 by estimate (fixed seeds).
    // Clustered 64-d data is hard for 1-bit and 4-bit codes (many near-equal distances); the floors
    // are the measured figures rounded down.
    const std::pair<const char*, double> floors[] = {{"pq16x8", 0.99}, {"pq16x4", 0.65}, {"rabitq1", 0.65},
                                                     {"rabitq4", 0.99}, {"binary2", 0.85}, {"sq4", 0.99}};
    for (const auto& [spec, floor] : floors) {
        const double r = estimate_recall(spec, Metric::kL2, 100);
        std::printf("[ info ] %s recall@10 after rescoring 100: %.3f\n", spec, r);
        EXPECT_GE(r, floor) << spec;
    }
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
    for (const char* spec : {"sq8", "sq4", "pq8x8", "pq12x4", "rabitq1", "rabitq2", "rabitq4", "rabitq8", "binary1",
                             "binary3"}) {
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
        // A damaged parameter section is rejected: truncate the payload inside the codec section.
        const std::string bytes = testing::read_bytes(path);
        std::string cut = bytes.substr(0, 16 + 40 + 8);
        const std::uint64_t payload = cut.size() - 16;
        const std::uint32_t crc0 = 0;
        cut.append(reinterpret_cast<const char*>(&payload), 8);
        const std::uint32_t crc = storage::crc32(0, cut.data(), cut.size() - 8);
        cut.append(reinterpret_cast<const char*>(&crc), 4);
        (void)crc0;
        cut.append(bytes.substr(bytes.size() - 12));
        testing::write_bytes(path, cut);
        auto file2 = storage::MappedFile::open(path);
        ASSERT_TRUE(file2.ok());
        auto r2 = storage::open_payload(*file2, storage::fourcc("TEST"), 1);
        ASSERT_TRUE(r2.ok()) << spec << " " << r2.error().message();
        auto bad = Codec::load(*r2);
        ASSERT_FALSE(bad.ok()) << spec;
        EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss) << spec;
    }
}

TEST(ProductQuantisation, EstimatesAreDistancesToTheReconstructionAndFastScanIsWithinItsTableRounding) {
    for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
        for (const char* spec : {"pq16x8", "pq16x4", "pq7x4"}) {
            const std::size_t dim = std::string(spec) == "pq7x4" ? 63 : 64;
            const auto data = clustered(1500, dim, 8, metric != Metric::kL2);
            const auto queries = clustered(10, dim, 9, metric != Metric::kL2);
            auto codec = trained(spec, data, metric);
            const std::size_t cs = codec->code_size();
            std::vector<std::uint8_t> codes(data.rows * cs);
            codec->encode(data, codes.data());
            std::vector<std::uint8_t> packed(codec->packed_bytes(data.rows));
            codec->pack(codes.data(), data.rows, packed.data());
            std::vector<std::uint8_t> one(cs);
            for (std::size_t i = 0; i < data.rows; ++i) {
                codec->unpack(packed.data(), i, one.data());
                ASSERT_TRUE(std::equal(one.begin(), one.end(), codes.begin() + static_cast<long>(i * cs))) << spec << " " << i;
            }
            std::vector<float> back(data.rows * dim), est(data.rows);
            codec->decode(codes.data(), data.rows, back.data());
            for (std::size_t q = 0; q < queries.rows; ++q) {
                auto e = codec->estimator(queries.row_ptr(q));
                e->scan(packed.data(), data.rows, est.data(), nullptr);
                double max_gap = 0;
                for (std::size_t i = 0; i < data.rows; ++i) {
                    const double ref = true_distance(queries.row_ptr(q), back.data() + i * dim, dim, metric);
                    ASSERT_NEAR(e->distance(codes.data() + i * cs), ref, 1e-4 * (1 + std::fabs(ref))) << spec;
                    max_gap = std::max(max_gap, std::fabs(est[i] - ref));
                }
                if (codec->spec().bits == 8) {
                    EXPECT_LT(max_gap, 1e-3) << spec;
                } else {
                    // u8 tables: each of M lookups is off by at most half a step of the shared scale.
                    double span = 0;
                    for (std::size_t i = 0; i < data.rows; ++i) {
                        span = std::max(span, true_distance(queries.row_ptr(q), back.data() + i * dim, dim, metric));
                    }
                    EXPECT_GT(max_gap, 0.0) << spec;  // the fast path really is the quantised one
                    EXPECT_LT(max_gap, 0.05 * std::max(1.0, span)) << spec << " metric " << simd::to_string(metric);
                }
            }
        }
    }
}

// Binary codes against an independent reference: sign bits of x - mu and Hamming distance.
TEST(BinaryCodes, OnePlaneEstimateMatchesHammingReference) {
    const auto data = clustered(400, 70, 10, false);
    const auto queries = clustered(5, 70, 11, false);
    auto codec = trained("binary1", data, Metric::kL2);
    std::vector<double> mu(70);
    for (std::size_t i = 0; i < data.rows; ++i) {
        for (std::size_t j = 0; j < 70; ++j) mu[j] += data.row_ptr(i)[j] / double(data.rows);
    }
    std::vector<std::uint8_t> codes(data.rows * codec->code_size());
    codec->encode(data, codes.data());
    for (std::size_t q = 0; q < queries.rows; ++q) {
        auto e = codec->estimator(queries.row_ptr(q));
        const float* qv = queries.row_ptr(q);
        for (std::size_t i = 0; i < data.rows; ++i) {
            const float* x = data.row_ptr(i);
            double a = 0, b = 0, xn = 0, qn = 0;
            int ham = 0;
            for (std::size_t j = 0; j < 70; ++j) {
                const double xr = x[j] - mu[j], qr = qv[j] - mu[j];
                a += std::fabs(xr) / 70;
                b += std::fabs(qr) / 70;
                xn += xr * xr;
                qn += qr * qr;
                ham += (xr >= 0) != (qr >= 0);
            }
            const double ref = qn + xn - 2 * a * b * (70 - 2 * ham);
            ASSERT_NEAR(e->distance(codes.data() + i * codec->code_size()), ref, 1e-3 * (1 + std::fabs(ref))) << i;
        }
    }
}

TEST(BinaryCodes, MorePlanesReconstructBetter) {
    const auto data = clustered(1000, 64, 12, false);
    double prev = INFINITY;
    for (const char* spec : {"binary1", "binary2", "binary4"}) {
        auto codec = trained(spec, data, Metric::kL2);
        std::vector<std::uint8_t> codes(data.rows * codec->code_size());
        codec->encode(data, codes.data());
        std::vector<float> back(data.rows * 64);
        codec->decode(codes.data(), data.rows, back.data());
        double err = 0;
        for (std::size_t i = 0; i < data.rows * 64; ++i) err += (back[i] - data.values[i]) * (back[i] - data.values[i]);
        EXPECT_LT(err, prev * 0.8) << spec;
        prev = err;
    }
}

// RaBitQ: the true distance lies within the reported bound (which holds with high probability: with
// eps0 = 3 about 0.3% of estimates fall outside; we allow 1%), and the bound is not vacuous.
TEST(Rabitq, EstimateErrorWithinItsBound) {
    for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
        for (const char* spec : {"rabitq1", "rabitq2", "rabitq4", "rabitq8"}) {
            const auto data = clustered(2000, 96, 13, metric != Metric::kL2);
            const auto queries = clustered(20, 96, 14, metric != Metric::kL2);
            auto codec = trained(spec, data, metric);
            ASSERT_TRUE(codec->has_error_bound());
            std::vector<std::uint8_t> codes(data.rows * codec->code_size());
            codec->encode(data, codes.data());
            std::vector<float> est(data.rows), err(data.rows);
            std::size_t outside = 0, total = 0;
            double width = 0, abs_err = 0;
            for (std::size_t q = 0; q < queries.rows; ++q) {
                codec->estimator(queries.row_ptr(q))->scan(codes.data(), data.rows, est.data(), err.data());
                for (std::size_t i = 0; i < data.rows; ++i) {
                    const double ref = true_distance(queries.row_ptr(q), data.row_ptr(i), 96, metric);
                    outside += std::fabs(est[i] - ref) > err[i] + 1e-4 * (1 + std::fabs(ref));
                    width += err[i];
                    abs_err += std::fabs(est[i] - ref);
                    ++total;
                }
            }
            std::printf("[ info ] %s %s: %zu of %zu outside the bound, mean |error| %.4f, mean bound %.4f\n", spec,
                        std::string(simd::to_string(metric)).c_str(), outside, total, abs_err / total, width / total);
            EXPECT_LE(outside * 100, total) << spec;
            EXPECT_LT(abs_err, width) << spec;  // the bound is wider than the typical error, as it must be
            EXPECT_LT(width / total, abs_err / total * 12) << spec;  // but not vacuous
        }
    }
}

TEST(Rabitq, MoreBitsEstimateBetter) {
    const auto data = clustered(2000, 64, 15, false);
    const auto queries = clustered(10, 64, 16, false);
    double prev = INFINITY;
    for (const char* spec : {"rabitq1", "rabitq2", "rabitq4", "rabitq8"}) {
        auto codec = trained(spec, data, Metric::kL2);
        std::vector<std::uint8_t> codes(data.rows * codec->code_size());
        codec->encode(data, codes.data());
        std::vector<float> est(data.rows);
        double e = 0;
        for (std::size_t q = 0; q < queries.rows; ++q) {
            codec->estimator(queries.row_ptr(q))->scan(codes.data(), data.rows, est.data(), nullptr);
            for (std::size_t i = 0; i < data.rows; ++i) {
                e += std::fabs(est[i] - true_distance(queries.row_ptr(q), data.row_ptr(i), 64, Metric::kL2));
            }
        }
        EXPECT_LT(e, prev * 0.7) << spec;
        prev = e;
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
    EXPECT_EQ(Codec::create(*CodecSpec::parse("pq3x8"), 8, Metric::kL2).error().code(), ErrorCode::kInvalidArgument);
    // Float codes need no training.
    auto none = Codec::create(*CodecSpec::parse("none"), 8, Metric::kL2);
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE((*none)->trained());
    EXPECT_EQ((*none)->code_size(), 32u);
}

}  // namespace
}  // namespace quiver::index
