// The memory-budget rule (memory_budget.h): the chosen configuration, built, saved and opened as it is
// served, reports at most its prediction and at most the budget; a budget nothing fits is refused.
#include "quiver/index/memory_budget.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "index/index_testing.h"
#include "quiver/index/code_index.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "testing/testing.h"

namespace quiver::index {
namespace {

// Builds what `quiver build` builds for the choice (the same calls as src/cli/cmd_build.cpp).
std::unique_ptr<VectorIndex> build_choice(const BudgetChoice& c, const Matrix<float>& base, Metric metric,
                                          std::size_t M) {
    std::unique_ptr<VectorIndex> idx;
    if (c.index_type == "hnsw") {
        auto h = HnswIndex::create(base.dim, metric, {.M = M, .ef_construction = 48, .threads = 2, .codec = c.codec});
        EXPECT_TRUE(h) << h.error().to_string();
        idx = std::move(*h);
    } else if (c.index_type == "ivf" || c.codec.kind != CodecKind::kNone) {
        auto ci = CodeIndex::create(base.dim, metric, {.codec = c.codec, .nlist = c.nlist, .threads = 2});
        EXPECT_TRUE(ci) << ci.error().to_string();
        idx = std::move(*ci);
    } else {
        idx = std::move(*FlatIndex::create(base.dim, metric));
    }
    EXPECT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    return idx;
}

struct Case {
    std::size_t rows, dim;
    const char* type;
    Metric metric;
};

TEST(MemoryBudget, ChosenIndexesFitTheirBudgetsWhenServed) {
    testing::TempDir dir;
    const Case cases[] = {{3000, 48, "auto", Metric::kCosine}, {2500, 64, "flat", Metric::kL2},
                          {4000, 32, "ivf", Metric::kL2}, {3000, 48, "hnsw", Metric::kL2}};
    std::size_t built = 0;
    std::set<std::string> kinds_seen;
    for (const Case& tc : cases) {
        const auto base = testing::clustered_matrix(tc.rows, tc.dim, 20, tc.rows + tc.dim);
        auto all = budget_candidates({.budget_bytes = 0, .rows = tc.rows, .dim = tc.dim, .metric = tc.metric,
                                      .index_type = tc.type});
        ASSERT_TRUE(all) << all.error().to_string();
        ASSERT_GE(all->size(), 3u);
        // Budgets from just above the largest candidate to just above the smallest one.
        std::vector<std::uint64_t> budgets;
        for (const auto& c : *all) budgets.push_back(c.predicted_bytes + 1);
        for (std::uint64_t budget : budgets) {
            auto choice = choose_for_budget({.budget_bytes = budget, .rows = tc.rows, .dim = tc.dim,
                                             .metric = tc.metric, .index_type = tc.type});
            ASSERT_TRUE(choice) << choice.error().to_string();
            SCOPED_TRACE(fmt::format("{} x {} {} budget {}: {} {}", tc.rows, tc.dim, tc.type, budget,
                                     choice->index_type, choice->codec.to_string()));
            EXPECT_LE(choice->predicted_bytes, budget);
            // The first candidate that fits: every earlier one does not.
            for (const auto& c : *all) {
                if (c.index_type == choice->index_type && c.codec == choice->codec) break;
                EXPECT_GT(c.predicted_bytes, budget);
            }
            EXPECT_EQ(choice->vectors_on_disk, choice->codec.kind != CodecKind::kNone);
            if (std::string(tc.type) != "auto") EXPECT_EQ(choice->index_type, tc.type);
            auto idx = build_choice(*choice, base, tc.metric, 16);
            const std::string path = dir.file("b.qvr");
            ASSERT_TRUE(idx->save(path).ok());
            auto served = open_index(path, {.vectors_on_disk = choice->vectors_on_disk, .verify = true});
            ASSERT_TRUE(served) << served.error().to_string();
            const std::uint64_t resident = (*served)->memory_bytes();
            EXPECT_LE(resident, choice->predicted_bytes);
            EXPECT_LE(resident, budget);
            // The prediction is a bound, not a guess far off: within 25% + the fixed 64 KiB.
            EXPECT_GE(double(resident) + 65536.0, 0.75 * double(choice->predicted_bytes)) << resident;
            // And the index answers.
            auto r = (*served)->search(base.view().slice(7, 1), {.k = 5, .ef = 64,
                                                                 .rescore = choice->rescore == 0
                                                                                ? SearchParams::kRescoreDefault
                                                                                : choice->rescore});
            ASSERT_TRUE(r) << r.error().to_string();
            EXPECT_EQ(to_int(r->label(0, 0)), 7u);
            kinds_seen.insert(choice->index_type + ":" + choice->codec.to_string());
            ++built;
        }
    }
    EXPECT_GE(built, 20u);
    EXPECT_GE(kinds_seen.size(), 10u);  // float32 graphs and flat, HNSW on codes, flat and IVF codes
    EXPECT_TRUE(kinds_seen.count("hnsw:none") && kinds_seen.count("hnsw:sq8") && kinds_seen.count("ivf:sq4") &&
                kinds_seen.count("flat:none"));
}

TEST(MemoryBudget, TheRuleIsDeterministicAndOrdered) {
    const BudgetRequest r{.budget_bytes = 1ull << 30, .rows = 10'000'000, .dim = 96, .metric = Metric::kL2};
    auto all = budget_candidates(r);
    ASSERT_TRUE(all);
    // auto: float32 HNSW first, then HNSW on codes, then IVF, each group largest code first.
    EXPECT_EQ((*all)[0].index_type, "hnsw");
    EXPECT_EQ((*all)[0].codec.kind, CodecKind::kNone);
    EXPECT_EQ((*all)[1].codec.to_string(), "sq8");
    for (std::size_t i = 2; i < all->size(); ++i) {
        if ((*all)[i].index_type == (*all)[i - 1].index_type) {
            EXPECT_LE((*all)[i].predicted_bytes, (*all)[i - 1].predicted_bytes) << i;
        }
    }
    EXPECT_EQ(all->back().index_type, "ivf");
    // 10M x 96 in 1 GiB (the scale target): no graph fits; IVF with 4-bit codes does.
    auto c = choose_for_budget(r);
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ(c->index_type, "ivf");
    EXPECT_EQ(c->codec.to_string(), "sq4");
    EXPECT_TRUE(c->vectors_on_disk);
    EXPECT_EQ(c->nlist, default_nlist(10'000'000));
    EXPECT_EQ(c->rescore, 100u);
    // Exact figures of the accounting: sq4 codes 48 B, slot ids 4 B, label + tombstone 9 B per vector,
    // codec ranges 2 x 96 floats, 12,649 centroids of 96 floats, 64 KiB.
    EXPECT_EQ(default_nlist(10'000'000), 12649u);
    EXPECT_EQ(c->predicted_bytes, 10'000'000ull * (48 + 4 + 9) + 2 * 96 * 4 + 12649ull * 96 * 4 + 65536);
    auto again = choose_for_budget(r);
    EXPECT_EQ(again->predicted_bytes, c->predicted_bytes);
}

TEST(MemoryBudget, TooSmallBudgetsAndBadRequestsAreRefused) {
    auto tiny = choose_for_budget({.budget_bytes = 100'000, .rows = 100'000, .dim = 100, .metric = Metric::kCosine});
    ASSERT_FALSE(tiny);
    EXPECT_EQ(tiny.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(tiny.error().message().find("fits a memory budget of 100000 bytes"), std::string::npos)
        << tiny.error().message();
    EXPECT_NE(tiny.error().message().find("smallest configuration needs"), std::string::npos);
    EXPECT_FALSE(choose_for_budget({.budget_bytes = 1 << 30, .rows = 0, .dim = 8}));
    EXPECT_FALSE(choose_for_budget({.budget_bytes = 1 << 30, .rows = 10, .dim = 8, .index_type = "lsh"}));
    EXPECT_FALSE(choose_for_budget({.budget_bytes = 1 << 30, .rows = 10, .dim = 8, .M = 1}));
}

TEST(MemoryBudget, ByteSizesParseExactlyAndRejectGarbage) {
    EXPECT_EQ(*parse_byte_size("1GiB"), 1073741824u);
    EXPECT_EQ(*parse_byte_size("1g"), 1073741824u);
    EXPECT_EQ(*parse_byte_size("512MiB"), 512u << 20);
    EXPECT_EQ(*parse_byte_size("1.5GiB"), 1610612736u);
    EXPECT_EQ(*parse_byte_size("64KiB"), 65536u);
    EXPECT_EQ(*parse_byte_size("2GB"), 2000000000u);
    EXPECT_EQ(*parse_byte_size("3kb"), 3000u);
    EXPECT_EQ(*parse_byte_size("1000000"), 1000000u);
    EXPECT_EQ(*parse_byte_size("7B"), 7u);
    for (const char* bad : {"", "GiB", "1.2.3", "1x", "1 GiB", "-5", "0", "1GiBs", "2e3", "1e19"}) {
        auto r = parse_byte_size(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(r.error().message().find("is not a size"), std::string::npos) << r.error().message();
    }
}

}  // namespace
}  // namespace quiver::index
