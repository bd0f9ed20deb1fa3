// Filtered k-NN: the planner's boundaries, every strategy against brute force on random filters
// (exact = brute force exactly; ACORN-1, ACORN-γ and post-filter by recall), k results whenever k
// match, and the ACORN-γ file.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "index_testing.h"
#include "quiver/index/filtered_search.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "testing/testing.h"

namespace quiver::index {
namespace {

TEST(FilterPlanner, ChoosesAtTheBoundaries) {
    PlannerParams p;
    p.exact_max_matches = 1000;
    p.post_filter_min_selectivity = 0.5;
    EXPECT_EQ(plan_filtered_search(10000, 10000, true, p).strategy, FilterStrategy::kUnfiltered);
    EXPECT_EQ(plan_filtered_search(0, 10000, true, p).strategy, FilterStrategy::kExactScan);
    EXPECT_EQ(plan_filtered_search(1000, 10000, true, p).strategy, FilterStrategy::kExactScan);
    EXPECT_EQ(plan_filtered_search(1001, 10000, true, p).strategy, FilterStrategy::kAcorn);
    EXPECT_EQ(plan_filtered_search(4999, 10000, true, p).strategy, FilterStrategy::kAcorn);
    EXPECT_EQ(plan_filtered_search(5000, 10000, true, p).strategy, FilterStrategy::kPostFilter);
    EXPECT_EQ(plan_filtered_search(9999, 10000, true, p).strategy, FilterStrategy::kPostFilter);
    // The exact bound wins over selectivity on small indexes.
    EXPECT_EQ(plan_filtered_search(900, 1000, true, p).strategy, FilterStrategy::kExactScan);
    EXPECT_EQ(plan_filtered_search(5, 10000, false, p).strategy, FilterStrategy::kExactScan);  // flat
    const FilterPlan forced = plan_filtered_search(5, 10000, true, p, FilterStrategy::kAcorn);
    EXPECT_EQ(forced.strategy, FilterStrategy::kAcorn);
    EXPECT_NE(forced.reason.find("forced"), std::string::npos);
    const FilterPlan plan = plan_filtered_search(2500, 10000, true, p);
    EXPECT_DOUBLE_EQ(plan.selectivity, 0.25);
    EXPECT_NE(plan.reason.find("2500 of 10000"), std::string::npos);
    for (auto s : {FilterStrategy::kAuto, FilterStrategy::kUnfiltered, FilterStrategy::kExactScan, FilterStrategy::kAcorn,
                   FilterStrategy::kPostFilter}) {
        EXPECT_EQ(*parse_filter_strategy(to_string(s)), s);
    }
    EXPECT_FALSE(parse_filter_strategy("prefilter"));
}

class FilteredHnsw : public ::testing::TestWithParam<Metric> {
protected:
    static constexpr std::size_t kN = 4000;
    static constexpr std::size_t kDim = 16;
    void SetUp() override {
        std::mt19937_64 rng(7);
        // Clustered data, so a filter correlated with a cluster is a hard case.
        std::normal_distribution<float> g;
        std::vector<std::vector<float>> centers(20, std::vector<float>(kDim));
        for (auto& c : centers) {
            for (auto& x : c) x = 3.0f * g(rng);
        }
        data_.resize(kN * kDim);
        cluster_.resize(kN);
        for (std::size_t i = 0; i < kN; ++i) {
            cluster_[i] = rng() % centers.size();
            for (std::size_t j = 0; j < kDim; ++j) data_[i * kDim + j] = centers[cluster_[i]][j] + g(rng);
        }
        HnswParams hp;
        hp.M = 8;
        hp.ef_construction = 100;
        hp.threads = 1;
        auto h = HnswIndex::create(kDim, GetParam(), hp);
        ASSERT_TRUE(h);
        hnsw_ = std::move(*h);
        ASSERT_TRUE(hnsw_->add({data_.data(), kN, kDim}, sequential_labels(kN)));
    }

    std::vector<std::uint64_t> truth(const float* q, const Bitmap& allowed, std::size_t k) const {
        std::vector<std::pair<double, std::uint64_t>> all;
        allowed.for_each([&](std::uint32_t i) {
            all.emplace_back(testing::reference_distance(q, data_.data() + i * kDim, kDim, GetParam()), i);
        });
        std::sort(all.begin(), all.end());
        std::vector<std::uint64_t> out;
        for (std::size_t i = 0; i < std::min(k, all.size()); ++i) out.push_back(all[i].second);
        return out;
    }

    std::vector<float> data_;
    std::vector<std::size_t> cluster_;
    std::unique_ptr<HnswIndex> hnsw_;
};

TEST_P(FilteredHnsw, EveryStrategyAgainstBruteForce) {
    auto gamma = AcornGraph::build(*hnsw_, {.gamma = 8, .m_beta = 16, .threads = 2});
    ASSERT_TRUE(gamma) << gamma.error().message();
    EXPECT_EQ(gamma->nodes(), kN);
    std::mt19937_64 rng(3);
    constexpr std::size_t k = 10;
    struct Case {
        double selectivity;
        bool correlated;  // only documents of a few clusters pass
    };
    const Case cases[] = {{0.002, false}, {0.01, false}, {0.05, false}, {0.2, false}, {0.5, false}, {0.9, false},
                          {1.0, false},   {0.05, true},  {0.2, true}};
    for (const Case& cs : cases) {
        double recall[4] = {0, 0, 0, 0};  // auto, acorn-1, acorn-gamma, post
        std::size_t total = 0;
        for (int qi = 0; qi < 20; ++qi) {
            Bitmap allowed;
            const std::size_t pick = rng() % 20;
            for (std::uint32_t i = 0; i < kN; ++i) {
                const bool pass = cs.correlated ? (cluster_[i] % 20 == pick || cluster_[i] % 20 == (pick + 7) % 20) &&
                                                      std::uniform_real_distribution<>(0, 1)(rng) < cs.selectivity * 10
                                                : std::uniform_real_distribution<>(0, 1)(rng) < cs.selectivity;
                if (pass) allowed.add(i);
            }
            // The query sits in another cluster than the passing ones (negative correlation).
            const std::size_t qrow = rng() % kN;
            std::vector<float> q(data_.begin() + static_cast<std::ptrdiff_t>(qrow * kDim),
                                 data_.begin() + static_cast<std::ptrdiff_t>((qrow + 1) * kDim));
            for (auto& x : q) x += 0.1f;
            const auto want = truth(q.data(), allowed, k);
            total += want.size();
            // Exact scan: identical to brute force.
            const auto exact = hnsw_exact_scan(*hnsw_, q, allowed, k);
            ASSERT_EQ(exact.size(), want.size());
            for (std::size_t j = 0; j < want.size(); ++j) EXPECT_EQ(to_int(exact[j].label), want[j]);
            auto score = [&](const std::vector<Neighbor>& got) {
                std::size_t hit = 0;
                for (const auto& n : got) {
                    EXPECT_TRUE(allowed.contains(static_cast<std::uint32_t>(to_int(n.label))));
                    hit += std::count(want.begin(), want.end(), to_int(n.label));
                }
                return static_cast<double>(hit);
            };
            FilteredSearchParams fp;
            fp.k = k;
            fp.ef = 64;
            FilterPlan plan;
            auto got = filtered_search(*hnsw_, q, &allowed, fp, &plan);
            ASSERT_TRUE(got);
            ASSERT_EQ(got->size(), want.size()) << "auto must return min(k, matches)";
            EXPECT_EQ(plan.matches, allowed.cardinality());
            recall[0] += score(*got);
            recall[1] += score(hnsw_acorn_search(*hnsw_, nullptr, q, allowed, k, 64));
            recall[2] += score(hnsw_acorn_search(*hnsw_, &*gamma, q, allowed, k, 64));
            fp.strategy = FilterStrategy::kPostFilter;
            auto post = filtered_search(*hnsw_, q, &allowed, fp);
            ASSERT_TRUE(post);
            ASSERT_EQ(post->size(), want.size());
            recall[3] += score(*post);
        }
        if (total == 0) continue;
        const std::string what = "selectivity " + std::to_string(cs.selectivity) + (cs.correlated ? " correlated" : "");
        EXPECT_GE(recall[0] / total, 0.95) << "auto, " << what;
        EXPECT_GE(recall[3] / total, 0.9) << "post-filter, " << what;
        if (cs.selectivity >= 0.05) {  // ACORN's band; below it the planner scans
            EXPECT_GE(recall[1] / total, 0.85) << "ACORN-1, " << what;
            EXPECT_GE(recall[2] / total, 0.85) << "ACORN-gamma, " << what;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Metrics, FilteredHnsw, ::testing::Values(Metric::kL2, Metric::kCosine));

TEST(FilteredSearch, FlatIndexesAndMissingLabels) {
    auto flat = FlatIndex::create(4, Metric::kL2);
    ASSERT_TRUE(flat);
    std::vector<float> rows = {0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0};
    ASSERT_TRUE((*flat)->add({rows.data(), 4, 4}, sequential_labels(4)));
    Bitmap allowed = Bitmap::of(std::vector<std::uint32_t>{1, 3, 77});  // 77 has no vector
    FilterPlan plan;
    const std::vector<float> q = {2.9f, 0, 0, 0};
    auto got = filtered_search(**flat, q, &allowed, {.k = 5}, &plan);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), 2u);
    EXPECT_EQ(to_int((*got)[0].label), 3u);
    EXPECT_EQ(to_int((*got)[1].label), 1u);
    EXPECT_EQ(plan.strategy, FilterStrategy::kExactScan);
    const std::vector<float> wrong = {1, 2};
    EXPECT_EQ(filtered_search(**flat, wrong, &allowed, {}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(AcornGraphFile, RoundTripsAndRefusesDamage) {
    std::mt19937_64 rng(1);
    std::normal_distribution<float> g;
    std::vector<float> rows(600 * 8);
    for (auto& x : rows) x = g(rng);
    HnswParams hp;
    hp.M = 6;
    hp.threads = 1;
    auto h = HnswIndex::create(8, Metric::kL2, hp);
    ASSERT_TRUE(h);
    ASSERT_TRUE((*h)->add({rows.data(), 600, 8}, sequential_labels(600)));
    auto gamma = AcornGraph::build(**h, {.gamma = 3});
    ASSERT_TRUE(gamma);
    EXPECT_EQ(gamma->m_beta(), 12u);
    for (std::uint32_t s = 0; s < 600; ++s) {
        ASSERT_GE(gamma->neighbors(s).size(), std::min<std::size_t>(12, 599));
        ASSERT_LE(gamma->neighbors(s).size(), 18u);
    }
    const std::string path = ::testing::TempDir() + "/acorn_" + std::to_string(::getpid()) + ".acrn";
    ASSERT_TRUE(gamma->save(path));
    auto back = AcornGraph::open(path, **h);
    ASSERT_TRUE(back) << back.error().message();
    for (std::uint32_t s = 0; s < 600; ++s) {
        ASSERT_TRUE(std::equal(back->neighbors(s).begin(), back->neighbors(s).end(), gamma->neighbors(s).begin(),
                               gamma->neighbors(s).end()));
    }
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::string bad = bytes;
    bad[bytes.size() / 2] ^= 0x10;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
    EXPECT_EQ(AcornGraph::open(path, **h).error().code(), ErrorCode::kDataLoss);
    // A file for another index does not fit.
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    auto other = HnswIndex::create(8, Metric::kL2, hp);
    ASSERT_TRUE((*other)->add({rows.data(), 300, 8}, sequential_labels(300)));
    EXPECT_EQ(AcornGraph::open(path, **other).error().code(), ErrorCode::kDataLoss);
    std::filesystem::remove(path);
    EXPECT_FALSE(AcornGraph::build(**h, {.gamma = 0}));
}

}  // namespace
}  // namespace quiver::index

namespace quiver::index {
namespace {

// An HNSW graph on codes opened with its float32 vectors on disk: the exact scan reads the allowed
// vectors with pread (equal to the in-memory scan), ACORN (which needs vectors in memory) is answered
// by the filtered walk on codes; both return only allowed labels with exact distances.
TEST(FilteredSearch, CodedGraphWithVectorsOnDisk) {
    testing::TempDir dir;
    const auto base = testing::clustered_matrix(3000, 24, 16, 61);
    const auto queries = testing::clustered_matrix(20, 24, 16, 62);
    HnswParams hp;
    hp.M = 12;
    hp.ef_construction = 80;
    hp.threads = 2;
    hp.codec = *CodecSpec::parse("sq8");
    auto built = *HnswIndex::create(24, Metric::kCosine, hp);
    ASSERT_TRUE(built->add(base, sequential_labels(base.rows)).ok());
    const std::string path = dir.file("h.qvr");
    ASSERT_TRUE(built->save(path).ok());
    auto mem = *HnswIndex::open(path);
    auto disk = *HnswIndex::open(path, {.vectors_on_disk = true});
    ASSERT_TRUE(disk->vectors_on_disk());
    Bitmap allowed;
    for (std::uint32_t i = 0; i < base.rows; i += 3) allowed.add(i);
    auto flat = *FlatIndex::create(24, Metric::kCosine);
    ASSERT_TRUE(flat->add(base, sequential_labels(base.rows)).ok());
    for (std::size_t qi = 0; qi < queries.rows; ++qi) {
        const std::span<const float> q(queries.row_ptr(qi), 24);
        FilteredSearchParams p;
        p.k = 10;
        p.ef = 100;
        p.strategy = FilterStrategy::kExactScan;
        FilterPlan plan;
        auto a = *filtered_search(*mem, q, &allowed, p, &plan);
        auto b = *filtered_search(*disk, q, &allowed, p, &plan);
        ASSERT_EQ(a.size(), 10u);
        ASSERT_EQ(b.size(), a.size());
        for (std::size_t j = 0; j < a.size(); ++j) {
            EXPECT_EQ(a[j].label, b[j].label) << qi << " " << j;
            EXPECT_EQ(a[j].distance, b[j].distance) << qi << " " << j;
        }
        p.strategy = FilterStrategy::kAcorn;
        auto c = *filtered_search(*disk, q, &allowed, p, &plan);
        EXPECT_NE(plan.reason.find("on disk"), std::string::npos) << plan.reason;
        ASSERT_EQ(c.size(), 10u);
        std::size_t hits = 0;
        for (const auto& n : c) {
            ASSERT_TRUE(allowed.contains(static_cast<std::uint32_t>(to_int(n.label))));
            // The distance is the exact float32 one (re-scored from disk).
            const double exact = testing::reference_distance(base.row_ptr(to_int(n.label)), q.data(), 24, Metric::kCosine);
            EXPECT_NEAR(n.distance, exact, 1e-4);
            for (const auto& m : a) hits += m.label == n.label ? 1 : 0;
        }
        EXPECT_GE(hits, 8u) << qi;
    }
}

}  // namespace
}  // namespace quiver::index
