#include "quiver/sparse/maxscore.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quiver/sparse/bm25_index.h"

namespace quiver::sparse {
namespace {

// A Zipf-ish random collection: a few frequent terms, many rare ones.
PostingStore random_store(WeightType type, std::uint32_t num_docs, std::uint32_t num_terms, std::uint64_t seed,
                          std::uint32_t max_tf = 9) {
    std::mt19937_64 rng(seed);
    PostingsBuilder b(type);
    b.set_num_docs(num_docs);
    for (TermId t = 0; t < num_terms; ++t) {
        const double p = 0.5 / (1.0 + t);
        std::bernoulli_distribution has(p);
        for (DocIndex d = 0; d < num_docs; ++d) {
            if (!has(rng)) continue;
            const float w = type == WeightType::kFrequency ? static_cast<float>(1 + rng() % max_tf)
                                                           : std::uniform_real_distribution<float>(0.05f, 2.0f)(rng);
            b.add(t, d, w);
        }
    }
    auto s = b.build();
    EXPECT_TRUE(s.ok());
    return std::move(s).value();
}

void expect_same(const std::vector<ScoredDoc>& got, const std::vector<ScoredDoc>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i].score, want[i].score, 1e-4f * std::max(1.0f, want[i].score)) << "rank " << i;
    }
}

TEST(MaxScore, DotProductMatchesExhaustive) {
    const PostingStore store = random_store(WeightType::kFloat32, 6000, 200, 1);
    std::mt19937 rng(9);
    for (int q = 0; q < 60; ++q) {
        std::vector<QueryTerm> query;
        const int len = 1 + static_cast<int>(rng() % 12);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 210), std::uniform_real_distribution<float>(0.1f, 3.0f)(rng)});
        }
        for (std::size_t k : {1u, 10u, 100u}) {
            TopKStats stats;
            const auto got = search_top_k(store, query, k, DotProductScorer{}, &stats);
            const auto want = search_exhaustive(store, query, k, DotProductScorer{});
            expect_same(got, want);
        }
    }
}

TEST(MaxScore, Bm25MatchesExhaustiveAndPrunes) {
    const std::uint32_t n = 8000;
    PostingStore store = random_store(WeightType::kFrequency, n, 150, 2);
    std::vector<std::uint8_t> norms(n);
    std::mt19937 rng(4);
    for (auto& x : norms) x = encode_norm(1 + rng() % 500);
    std::vector<float> ni(256);
    for (int i = 0; i < 256; ++i) {
        ni[static_cast<std::size_t>(i)] = 1.0f / (0.9f * (0.6f + 0.4f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / 120.0f));
    }
    store.compute_block_scores([&](TermId, DocIndex d, float tf) { return 1.0f - 1.0f / (1.0f + tf * ni[norms[d]]); });
    const Bm25Scorer scorer{norms, ni};
    std::uint64_t scored = 0;
    std::uint64_t candidates = 0;
    for (int q = 0; q < 60; ++q) {
        std::vector<QueryTerm> query;
        const int len = 2 + static_cast<int>(rng() % 10);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 150), std::uniform_real_distribution<float>(0.2f, 5.0f)(rng)});
        }
        TopKStats stats;
        const auto got = search_top_k(store, query, 10, scorer, &stats);
        const auto want = search_exhaustive(store, query, 10, scorer);
        expect_same(got, want);
        scored += stats.docs_scored;
        candidates += search_exhaustive(store, query, n, scorer).size();  // documents matching any term
    }
    // Dynamic pruning evaluates fewer documents than match the query.
    EXPECT_LT(scored, candidates * 3 / 4) << scored << " of " << candidates;
}

TEST(MaxScore, EdgeCases) {
    const PostingStore store = random_store(WeightType::kFloat32, 500, 20, 3);
    EXPECT_TRUE(search_top_k(store, {}, 10, DotProductScorer{}).empty());
    const QueryTerm unknown[] = {{999, 1.0f}, {3, 0.0f}};
    EXPECT_TRUE(search_top_k(store, unknown, 10, DotProductScorer{}).empty());
    const QueryTerm one[] = {{0, 1.0f}};
    EXPECT_TRUE(search_top_k(store, one, 0, DotProductScorer{}).empty());
    const auto all = search_top_k(store, one, 100000, DotProductScorer{});
    EXPECT_EQ(all.size(), store.term_info(0).doc_freq);
    for (std::size_t i = 1; i < all.size(); ++i) {
        EXPECT_TRUE(all[i - 1].score > all[i].score || (all[i - 1].score == all[i].score && all[i - 1].doc < all[i].doc));
    }
}

// The best k of `all` (every matching document, best first) that `allowed` allows: the reference the
// walk must reproduce without over-fetching.
std::vector<ScoredDoc> allowed_prefix(const std::vector<ScoredDoc>& all, const AllowedDocs& allowed, std::size_t k) {
    std::vector<ScoredDoc> out;
    for (const auto& d : all) {
        if (out.size() == k) break;
        if (allowed.allows(d.doc)) out.push_back(d);
    }
    return out;
}

// What a search with score floor `floor` returns: the best k of `allowed` (best first) at or above it.
std::vector<ScoredDoc> at_or_above(const std::vector<ScoredDoc>& allowed, float floor, std::size_t k) {
    std::vector<ScoredDoc> out;
    for (const auto& d : allowed) {
        if (d.score >= floor && out.size() < k) out.push_back(d);
    }
    return out;
}

// The score at `rank` of `allowed` as a floor: none (0) for rank 0 or past its end.
float floor_at(const std::vector<ScoredDoc>& allowed, std::size_t rank) {
    return rank == 0 || rank >= allowed.size() ? 0.0f : allowed[rank].score;
}

TEST(MaxScore, AllowedDocsAreSkippedInsideTheWalk) {
    const std::uint32_t n = 6000;
    PostingStore store = random_store(WeightType::kFrequency, n, 120, 5);
    std::vector<std::uint8_t> norms(n);
    std::mt19937 rng(21);
    for (auto& x : norms) x = encode_norm(1 + rng() % 300);
    std::vector<float> ni(256);
    for (int i = 0; i < 256; ++i) {
        ni[static_cast<std::size_t>(i)] = 1.0f / (0.9f * (0.6f + 0.4f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / 90.0f));
    }
    store.compute_block_scores([&](TermId, DocIndex d, float tf) { return 1.0f - 1.0f / (1.0f + tf * ni[norms[d]]); });
    // A quarter deleted at random, and a filter on half the documents.
    std::vector<std::uint32_t> dead;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (rng() % 4 == 0) dead.push_back(d);
    }
    const DeletedDocs deleted = DeletedDocs().with(dead);
    Bitmap filter;
    for (std::uint32_t d = 0; d < n; d += 2) filter.add(d);
    const AllowedDocs masks[] = {AllowedDocs::of(&deleted), {nullptr, &filter}, AllowedDocs::of(&deleted, &filter)};
    const PostingStore dot_store = random_store(WeightType::kFloat32, n, 120, 15);
    const std::pair<const PostingStore*, Scorer> cases[] = {{&store, Bm25Scorer{norms, ni}},
                                                            {&dot_store, DotProductScorer{}}};
    for (int q = 0; q < 40; ++q) {
        std::vector<QueryTerm> query;
        const int len = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 120), std::uniform_real_distribution<float>(0.2f, 4.0f)(rng)});
        }
        for (const auto& [st, scorer] : cases) {
            const auto all = search_exhaustive(*st, query, n, scorer);
            for (const AllowedDocs& mask : masks) {
                for (std::size_t k : {1u, 10u, 50u}) {
                    const auto got = search_top_k(*st, query, k, scorer, nullptr, &mask);
                    const auto want = allowed_prefix(all, mask, k);
                    expect_same(got, want);
                    for (const auto& d : got) EXPECT_TRUE(mask.allows(d.doc)) << d.doc;
                    expect_same(search_exhaustive(*st, query, k, scorer, &mask), want);
                }
            }
        }
    }
}

TEST(MaxScore, Bm25BoundsRescaledForAnotherNormTable) {
    // Block bounds computed for avgdl 40; queries scored with avgdl 200 (every norm-inverse entry
    // larger), as when a segment of short documents is scored with collection-wide statistics.
    const std::uint32_t n = 8000;
    PostingStore store = random_store(WeightType::kFrequency, n, 100, 6, 2);
    std::vector<std::uint8_t> norms(n);
    std::mt19937 rng(8);
    for (auto& x : norms) x = encode_norm(1 + rng() % 400);
    auto table = [](float avgdl) {
        std::vector<float> t(256);
        for (int i = 0; i < 256; ++i) {
            t[static_cast<std::size_t>(i)] =
                1.0f / (1.2f * (0.25f + 0.75f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / avgdl));
        }
        return t;
    };
    const std::vector<float> built = table(40.0f);
    const std::vector<float> query_table = table(200.0f);
    store.compute_block_scores([&](TermId, DocIndex d, float tf) { return 1.0f - 1.0f / (1.0f + tf * built[norms[d]]); });
    float scale = 1.0f;
    for (std::size_t i = 0; i < 256; ++i) scale = std::max(scale, query_table[i] / built[i]);
    ASSERT_GT(scale, 4.0f);
    const Bm25Scorer scorer{norms, query_table, scale};
    for (int q = 0; q < 60; ++q) {
        std::vector<QueryTerm> query;
        const int len = 2 + static_cast<int>(rng() % 8);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 100), std::uniform_real_distribution<float>(0.2f, 5.0f)(rng)});
        }
        for (std::size_t k : {1u, 10u, 100u}) expect_same(search_top_k(store, query, k, scorer), search_exhaustive(store, query, k, scorer));
    }
    // Why the rescaling is needed: under the query's table, postings exceed their block's stored bound.
    // The rescaled bound s*x / (1 + s*x), x = u / (1 - u), covers every one of them.
    std::size_t exceeded = 0;
    for (TermId t = 0; t < 100; ++t) {
        PostingCursor c = store.cursor(t);
        for (DocIndex d = c.doc(); d != kTerminated; d = c.next()) {
            c.shallow_seek(d);
            const double u = c.block_max_score();
            const double unit = 1.0 - 1.0 / (1.0 + c.weight() * query_table[norms[d]]);
            const double x = scale * u / (1.0 - u);
            EXPECT_LE(unit, x / (1.0 + x) * (1.0 + 1e-5)) << t << " " << d;
            exceeded += unit > u * (1.0 + 1e-5) ? 1 : 0;
        }
    }
    EXPECT_GT(exceeded, 100u);
}

// min_score: the walk returns exactly the best k of the allowed documents scoring at least min_score,
// ties at it included, in every filter regime. Integer weights make every score exact whatever order a
// walk sums it in, so ties are real and compared exactly.
TEST(MaxScore, MinScoreKeepsTheBestKAtOrAboveIt) {
    const std::uint32_t n = 5000;
    const PostingStore store = random_store(WeightType::kFrequency, n, 100, 31, 4);
    std::mt19937 rng(77);
    std::vector<std::uint32_t> dead;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (rng() % 5 == 0) dead.push_back(d);
    }
    const DeletedDocs deleted = DeletedDocs().with(dead);
    Bitmap wide;
    Bitmap narrow;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (d % 3 != 0) wide.add(d);
        if (d % 40 == 7) narrow.add(d);
    }
    struct Case {
        AllowedDocs allowed;
        FilterWalk force;
    };
    const Case cases[] = {{{}, FilterWalk::kAuto},
                          {AllowedDocs::of(&deleted), FilterWalk::kAuto},
                          {AllowedDocs::of(&deleted, &wide), FilterWalk::kMask},
                          {AllowedDocs::of(&deleted, &wide), FilterWalk::kSeek},
                          {AllowedDocs::of(&deleted, &narrow), FilterWalk::kBitmap},
                          {AllowedDocs::of(&deleted, &narrow), FilterWalk::kSeek}};
    std::size_t tie_cases = 0;
    for (int q = 0; q < 40; ++q) {
        std::vector<QueryTerm> query;
        const int len = 1 + static_cast<int>(rng() % 6);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 100), static_cast<float>(1 + rng() % 4)});
        }
        const auto all = search_exhaustive(store, query, n, DotProductScorer{});
        for (const Case& c : cases) {
            const auto allowed = allowed_prefix(all, c.allowed, n);
            for (std::size_t rank : {0u, 3u, 9u, 25u}) {
                if (rank >= allowed.size()) continue;
                const float floor = allowed[rank].score;
                for (std::size_t k : {1u, 10u, 40u}) {
                    const std::vector<ScoredDoc> want = at_or_above(allowed, floor, k);
                    if (want.size() < k && want.size() > rank + 1) ++tie_cases;  // ties below the rank kept
                    const AllowedDocs* mask = c.allowed.restricts() ? &c.allowed : nullptr;
                    const auto got = search_top_k(store, query, k, DotProductScorer{}, nullptr, mask,
                                                  FilterWalkParams{.force = c.force}, floor);
                    ASSERT_EQ(got.size(), want.size()) << "query " << q << " rank " << rank << " k " << k;
                    for (std::size_t i = 0; i < got.size(); ++i) {
                        EXPECT_EQ(got[i].doc, want[i].doc) << i;
                        EXPECT_EQ(got[i].score, want[i].score) << i;
                    }
                }
            }
        }
    }
    EXPECT_GT(tie_cases, 20u);  // the cases exercise documents tying with the floor
}

// A floor from another source lets BM25 prune from the first posting: same results, fewer documents
// scored than the same walk starting empty.
TEST(MaxScore, MinScorePrunesBm25FromTheStart) {
    const std::uint32_t n = 8000;
    PostingStore store = random_store(WeightType::kFrequency, n, 150, 12);
    std::vector<std::uint8_t> norms(n);
    std::mt19937 rng(8);
    for (auto& x : norms) x = encode_norm(1 + rng() % 400);
    std::vector<float> ni(256);
    for (int i = 0; i < 256; ++i) {
        ni[static_cast<std::size_t>(i)] = 1.0f / (0.9f * (0.6f + 0.4f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / 100.0f));
    }
    store.compute_block_scores([&](TermId, DocIndex d, float tf) { return 1.0f - 1.0f / (1.0f + tf * ni[norms[d]]); });
    const Bm25Scorer scorer{norms, ni};
    std::uint64_t scored_plain = 0;
    std::uint64_t scored_floor = 0;
    for (int q = 0; q < 50; ++q) {
        std::vector<QueryTerm> query;
        const int len = 2 + static_cast<int>(rng() % 4);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 12), std::uniform_real_distribution<float>(0.5f, 3.0f)(rng)});
        }
        const auto all = search_exhaustive(store, query, n, scorer);
        if (all.size() < 30) continue;
        // Halfway between the 20th and the next lower distinct score: no float rounding decides.
        std::size_t r = 19;
        while (r + 1 < all.size() && all[r + 1].score == all[r].score) ++r;
        if (r + 1 >= all.size()) continue;
        const float floor = 0.5f * (all[r].score + all[r + 1].score);
        TopKStats plain;
        TopKStats floored;
        const auto want = search_top_k(store, query, 10, scorer, &plain);
        const auto got = search_top_k(store, query, 10, scorer, &floored, nullptr, {}, floor);
        expect_same(got, want);
        for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].doc, want[i].doc);
        // Above the 20th score, only the best 20 can enter: k = 40 returns exactly r + 1 documents.
        EXPECT_EQ(search_top_k(store, query, 40, scorer, nullptr, nullptr, {}, floor).size(), r + 1);
        scored_plain += plain.docs_scored;
        scored_floor += floored.docs_scored;
    }
    // Random documents give the plain walk a good threshold within a few blocks, so the saving here
    // is small; it is never negative, and a floor that is not used leaves the counts equal.
    EXPECT_GT(scored_plain, 0u);
    EXPECT_LT(scored_floor, scored_plain);
}

// The bulk window scan (forced on) equals the exhaustive reference bit for bit: same documents, same
// float scores (both sum in query order), with masks, floors and every k; forced off, MaxScore runs
// and the window counters stay at zero windows skipped by the scan.
TEST(MaxScore, WindowScanEqualsExhaustiveExactly) {
    const std::uint32_t n = 9000;
    PostingStore bm_store = random_store(WeightType::kFrequency, n, 60, 41);
    std::vector<std::uint8_t> norms(n);
    std::mt19937 rng(5);
    for (auto& x : norms) x = encode_norm(1 + rng() % 300);
    std::vector<float> ni(256);
    for (int i = 0; i < 256; ++i) {
        ni[static_cast<std::size_t>(i)] = 1.0f / (0.9f * (0.6f + 0.4f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / 80.0f));
    }
    bm_store.compute_block_scores([&](TermId, DocIndex d, float tf) { return 1.0f - 1.0f / (1.0f + tf * ni[norms[d]]); });
    const PostingStore dot_store = random_store(WeightType::kFloat32, n, 60, 42);
    std::vector<std::uint32_t> dead;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (rng() % 6 == 0) dead.push_back(d);
    }
    const DeletedDocs deleted = DeletedDocs().with(dead);
    Bitmap wide;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (d % 4 != 1) wide.add(d);
    }
    AllowedDocs bitmap_only = AllowedDocs::of(&deleted);
    bitmap_only.deleted_words = {};  // the ascending-cursor delete test
    const AllowedDocs masks[] = {{}, AllowedDocs::of(&deleted), bitmap_only, AllowedDocs::of(&deleted, &wide)};
    FilterWalkParams scan;
    scan.window_min_density = 0.0;
    scan.window_max_terms = 1000;
    scan.force = FilterWalk::kMask;
    const std::pair<const PostingStore*, Scorer> cases[] = {{&bm_store, Bm25Scorer{norms, ni}},
                                                            {&dot_store, DotProductScorer{}}};
    std::uint64_t skipped = 0;
    for (int q = 0; q < 40; ++q) {
        std::vector<QueryTerm> query;
        const int len = 1 + static_cast<int>(rng() % 5);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 60), std::uniform_real_distribution<float>(0.2f, 4.0f)(rng)});
        }
        for (const auto& [st, scorer] : cases) {
            const auto all = search_exhaustive(*st, query, n, scorer);
            for (const AllowedDocs& mask : masks) {
                const auto allowed = allowed_prefix(all, mask, n);
                for (std::size_t k : {1u, 10u, 100u}) {
                    for (std::size_t floor_rank : {std::size_t{0}, std::size_t{5}, std::size_t{30}}) {
                        const float floor = floor_at(allowed, floor_rank);
                        const std::vector<ScoredDoc> want = at_or_above(allowed, floor, k);
                        TopKStats stats;
                        const auto got = search_top_k(*st, query, k, scorer, &stats, mask.restricts() ? &mask : nullptr,
                                                      scan, floor);
                        ASSERT_EQ(got.size(), want.size()) << q << " k " << k;
                        for (std::size_t i = 0; i < got.size(); ++i) {
                            EXPECT_EQ(got[i].doc, want[i].doc) << q << " " << i;
                            EXPECT_EQ(got[i].score, want[i].score) << q << " " << i;
                        }
                        skipped += stats.blocks_skipped;
                    }
                }
            }
        }
    }
    EXPECT_GT(skipped, 0u);  // windows were skipped by their block bounds
}

// The window scan's threshold path (only candidates passing every required list are scored) on dense
// lists, where it runs in most windows: documents and float scores equal the exhaustive reference's
// allowed prefix bit for bit, over random 1-4 term queries (repeated terms included), BM25 with its
// own and a rescaled norm table (many tied scores: few lengths, tf 1-4), dot products, deletes, a
// permissive filter, floors and k from 1 to 300; a store of 30,000 documents and one smaller than a
// window (its accumulators sized to its documents).
void check_threshold_path(std::uint32_t n, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    PostingsBuilder bb(WeightType::kFrequency);
    PostingsBuilder db(WeightType::kFloat32);
    bb.set_num_docs(n);
    db.set_num_docs(n);
    const double density[] = {0.6, 0.45, 0.3, 0.2, 0.12, 0.05};
    for (TermId t = 0; t < 6; ++t) {
        std::bernoulli_distribution has(density[t]);
        for (DocIndex d = 0; d < n; ++d) {
            if (!has(gen)) continue;
            bb.add(t, d, static_cast<float>(1 + gen() % 4));
            db.add(t, d, static_cast<float>(1 + gen() % 16) * 0.125f);  // ties in dot products too
        }
    }
    PostingStore bm_store = std::move(bb.build()).value();
    const PostingStore dot_store = std::move(db.build()).value();
    std::vector<std::uint8_t> norms(n);
    for (auto& x : norms) x = encode_norm(20 + static_cast<std::uint32_t>(gen() % 12) * 10);
    std::vector<float> ni(256);
    std::vector<float> wide_ni(256);
    float scale = 1.0f;
    for (std::size_t i = 0; i < 256; ++i) {
        ni[i] = 1.0f / (0.9f * (0.6f + 0.4f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / 75.0f));
        wide_ni[i] = 1.0f / (0.9f * (0.6f + 0.4f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / 71.0f));
        scale = std::max(scale, wide_ni[i] / ni[i]);
    }
    bm_store.compute_block_scores([&](TermId, DocIndex d, float tf) { return 1.0f - 1.0f / (1.0f + tf * ni[norms[d]]); });
    std::vector<std::uint32_t> dead;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (gen() % 7 == 0) dead.push_back(d);
    }
    const DeletedDocs deleted = DeletedDocs().with(dead);
    Bitmap wide;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (d % 3 != 1) wide.add(d);
    }
    const AllowedDocs masks[] = {{}, AllowedDocs::of(&deleted), AllowedDocs::of(&deleted, &wide)};
    FilterWalkParams scan;
    scan.force = FilterWalk::kMask;
    const std::pair<const PostingStore*, Scorer> cases[] = {{&bm_store, Bm25Scorer{norms, ni}},
                                                            {&bm_store, Bm25Scorer{norms, wide_ni, scale}},
                                                            {&dot_store, DotProductScorer{}}};
    std::uint64_t thresholded = 0;
    std::uint64_t windows_total = 0;
    std::uint64_t compared = 0;
    std::mt19937 rng(static_cast<std::uint32_t>(seed + 1));
    for (int q = 0; q < 40; ++q) {
        std::vector<QueryTerm> query;
        const int len = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 6), std::uniform_real_distribution<float>(0.3f, 4.0f)(rng)});
        }
        for (const auto& [st, scorer] : cases) {
            const auto all = search_exhaustive(*st, query, n, scorer);
            for (const AllowedDocs& mask : masks) {
                const auto allowed = allowed_prefix(all, mask, n);
                for (std::size_t k : {1u, 10u, 21u, 101u, 300u}) {
                    for (std::size_t floor_rank : {std::size_t{0}, std::size_t{3}, std::size_t{150}}) {
                        const float floor = floor_at(allowed, floor_rank);
                        const std::vector<ScoredDoc> want = at_or_above(allowed, floor, k);
                        TopKStats stats;
                        const auto got = search_top_k(*st, query, k, scorer, &stats, mask.restricts() ? &mask : nullptr,
                                                      scan, floor);
                        ASSERT_EQ(got.size(), want.size()) << q << " k " << k;
                        for (std::size_t i = 0; i < got.size(); ++i) {
                            ASSERT_EQ(got[i].doc, want[i].doc) << q << " k " << k << " rank " << i;
                            ASSERT_EQ(got[i].score, want[i].score) << q << " k " << k << " rank " << i;
                        }
                        compared += got.size();
                        thresholded += stats.threshold_windows;
                        windows_total += (n + 2047) / 2048;
                    }
                }
            }
        }
    }
    EXPECT_GT(compared, 3000u);
    // The path ran in a large share of the windows.
    EXPECT_GT(thresholded * 5, windows_total) << thresholded << " of " << windows_total;
}

TEST(MaxScore, WindowThresholdPathEqualsExhaustive) {
    check_threshold_path(30000, 61);
    check_threshold_path(1500, 63);
}

// Every regime gives a document the float the exhaustive reference sums (query order), whatever k,
// filter, regime or min_score: long queries (3-12 terms, where MaxScore's bound order and the
// reference's order differ) compared bit for bit, documents and scores, against the reference's
// allowed prefix. The engine relies on it: a deeper retrieval must not reorder tied documents.
TEST(MaxScore, EveryRegimeScoresBitIdenticallyToExhaustive) {
    const std::uint32_t n = 7000;
    PostingStore bm_store = random_store(WeightType::kFrequency, n, 80, 51);
    std::vector<std::uint8_t> norms(n);
    std::mt19937 rng(52);
    for (auto& x : norms) x = encode_norm(1 + rng() % 400);
    std::vector<float> ni(256);
    for (int i = 0; i < 256; ++i) {
        ni[static_cast<std::size_t>(i)] = 1.0f / (0.9f * (0.6f + 0.4f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / 110.0f));
    }
    bm_store.compute_block_scores([&](TermId, DocIndex d, float tf) { return 1.0f - 1.0f / (1.0f + tf * ni[norms[d]]); });
    // A second table (collection-wide statistics): bounds rescaled, scores from the other table.
    std::vector<float> wide_ni(256);
    float scale = 1.0f;
    for (std::size_t i = 0; i < 256; ++i) {
        wide_ni[i] = ni[i] * 1.7f;
        scale = std::max(scale, wide_ni[i] / ni[i]);
    }
    const PostingStore dot_store = random_store(WeightType::kFloat32, n, 80, 53);
    std::vector<std::uint32_t> dead;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (rng() % 5 == 0) dead.push_back(d);
    }
    const DeletedDocs deleted = DeletedDocs().with(dead);
    Bitmap wide;
    Bitmap narrow;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (d % 4 != 2) wide.add(d);
        if (d % 29 == 3) narrow.add(d);
    }
    struct Case {
        AllowedDocs allowed;
        FilterWalk force;
        bool window;
    };
    const Case regimes[] = {{{}, FilterWalk::kAuto, false},
                            {{}, FilterWalk::kAuto, true},
                            {AllowedDocs::of(&deleted), FilterWalk::kAuto, false},
                            {AllowedDocs::of(&deleted, &wide), FilterWalk::kMask, false},
                            {AllowedDocs::of(&deleted, &wide), FilterWalk::kMask, true},
                            {AllowedDocs::of(&deleted, &wide), FilterWalk::kSeek, false},
                            {AllowedDocs::of(&deleted, &narrow), FilterWalk::kSeek, false},
                            {AllowedDocs::of(&deleted, &narrow), FilterWalk::kBitmap, false},
                            {AllowedDocs::of(&deleted, &wide), FilterWalk::kBitmap, false}};
    const std::pair<const PostingStore*, Scorer> cases[] = {{&bm_store, Bm25Scorer{norms, ni}},
                                                            {&bm_store, Bm25Scorer{norms, wide_ni, scale}},
                                                            {&dot_store, DotProductScorer{}}};
    std::uint64_t compared = 0;
    for (int q = 0; q < 30; ++q) {
        std::vector<QueryTerm> query;
        const int len = 3 + static_cast<int>(rng() % 10);
        for (int i = 0; i < len; ++i) {
            query.push_back({static_cast<TermId>(rng() % 80), std::uniform_real_distribution<float>(0.1f, 6.0f)(rng)});
        }
        for (const auto& [st, scorer] : cases) {
            const auto all = search_exhaustive(*st, query, n, scorer);
            for (const Case& c : regimes) {
                const auto allowed = allowed_prefix(all, c.allowed, n);
                FilterWalkParams params;
                params.force = c.force;
                params.window_max_terms = c.window ? 1000 : 0;
                params.window_min_density = 0.0;
                for (std::size_t k : {1u, 5u, 40u, 1200u}) {
                    for (std::size_t floor_rank : {std::size_t{0}, std::size_t{7}}) {
                        const float floor = floor_at(allowed, floor_rank);
                        const std::vector<ScoredDoc> want = at_or_above(allowed, floor, k);
                        const AllowedDocs* mask = c.allowed.restricts() ? &c.allowed : nullptr;
                        const auto got = search_top_k(*st, query, k, scorer, nullptr, mask, params, floor);
                        ASSERT_EQ(got.size(), want.size()) << "query " << q << " k " << k;
                        for (std::size_t i = 0; i < got.size(); ++i) {
                            ASSERT_EQ(got[i].doc, want[i].doc) << "query " << q << " k " << k << " rank " << i;
                            ASSERT_EQ(got[i].score, want[i].score) << "query " << q << " k " << k << " rank " << i;
                        }
                        compared += got.size();
                    }
                }
            }
        }
    }
    EXPECT_GT(compared, 100000u);
}

// The choice: short dense queries take the scan (bit-identical to exhaustive), long or sparse ones
// MaxScore; window_max_terms = 0 turns the scan off.
TEST(MaxScore, WindowScanChosenForShortDenseQueries) {
    const std::uint32_t n = 20000;
    const PostingStore store = random_store(WeightType::kFloat32, n, 400, 43);
    const QueryTerm dense[] = {{0, 1.0f}, {1, 2.0f}};          // lists of ~50% and ~25% of the documents
    const QueryTerm sparse[] = {{300, 1.0f}, {390, 2.0f}};     // ~0.2% each
    const auto want = search_exhaustive(store, dense, 10, DotProductScorer{});
    const auto got = search_top_k(store, dense, 10, DotProductScorer{});
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].score, want[i].score);  // exact: the scan
    FilterWalkParams off;
    off.window_max_terms = 0;
    TopKStats on_stats;
    TopKStats off_stats;
    search_top_k(store, dense, 10, DotProductScorer{}, &on_stats);
    search_top_k(store, dense, 10, DotProductScorer{}, &off_stats, nullptr, off);
    // The scan adds every posting of a window it decodes; MaxScore evaluates fewer candidates.
    EXPECT_GT(on_stats.docs_scored, off_stats.docs_scored);
    TopKStats sparse_stats;
    TopKStats sparse_off;
    search_top_k(store, sparse, 10, DotProductScorer{}, &sparse_stats);
    search_top_k(store, sparse, 10, DotProductScorer{}, &sparse_off, nullptr, off);
    EXPECT_EQ(sparse_stats.docs_scored, sparse_off.docs_scored);  // MaxScore both times
}

}  // namespace
}  // namespace quiver::sparse
