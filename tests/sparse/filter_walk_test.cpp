// Filtered posting walks (sparse/maxscore.h): the filter bitmap drives the walk in three regimes
// (bitmap-driven, seek, mask); every regime must return exactly what filtered exhaustive scoring does.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "quiver/sparse/bm25_index.h"
#include "quiver/sparse/maxscore.h"

namespace quiver::sparse {
namespace {

// A Zipf-ish store: a few terms in most documents, many rare ones.
PostingStore zipf_store(WeightType type, std::uint32_t num_docs, std::uint32_t num_terms, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    PostingsBuilder b(type);
    b.set_num_docs(num_docs);
    for (TermId t = 0; t < num_terms; ++t) {
        std::bernoulli_distribution has(0.7 / (1.0 + t));
        for (DocIndex d = 0; d < num_docs; ++d) {
            if (!has(rng)) continue;
            const float w = type == WeightType::kFrequency ? static_cast<float>(1 + rng() % 7)
                                                           : std::uniform_real_distribution<float>(0.05f, 2.0f)(rng);
            b.add(t, d, w);
        }
    }
    auto s = b.build();
    EXPECT_TRUE(s.ok());
    return std::move(s).value();
}

std::vector<float> norm_table(float avgdl) {
    std::vector<float> t(256);
    for (int i = 0; i < 256; ++i) {
        t[static_cast<std::size_t>(i)] =
            1.0f / (0.9f * (0.6f + 0.4f * static_cast<float>(decode_norm(static_cast<std::uint8_t>(i))) / avgdl));
    }
    return t;
}

// A filter of about `share` of [0, n): uniform, or clustered in runs (run containers), or both.
Bitmap make_filter(std::uint32_t n, double share, int shape, std::mt19937& rng) {
    Bitmap f;
    if (shape == 0) {
        std::bernoulli_distribution in(share);
        for (std::uint32_t d = 0; d < n; ++d) {
            if (in(rng)) f.add(d);
        }
    } else {
        const std::uint32_t run = 1 + static_cast<std::uint32_t>(rng() % 200);
        const double starts = share / run;
        std::bernoulli_distribution start(std::min(1.0, starts));
        for (std::uint32_t d = 0; d < n; ++d) {
            if (start(rng)) {
                for (std::uint32_t e = d; e < std::min(n, d + run); ++e) f.add(e);
            }
        }
        f.optimize();
    }
    return f;
}

// Same documents and bit-identical scores.
bool same(const std::vector<ScoredDoc>& a, const std::vector<ScoredDoc>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].doc != b[i].doc || a[i].score != b[i].score) return false;
    }
    return true;
}

// Checks `got` against filtered exhaustive scoring: same length and score at every rank, each hit
// allowed and scored as the exhaustive scorer scores that document.
void expect_exact(const std::vector<ScoredDoc>& got, const std::vector<ScoredDoc>& want,
                  const std::map<DocIndex, float>& score_of, const AllowedDocs& allowed, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i].score, want[i].score, 1e-4f * std::max(1.0f, want[i].score)) << what << " rank " << i;
        EXPECT_TRUE(allowed.allows(got[i].doc)) << what << " doc " << got[i].doc;
        const auto it = score_of.find(got[i].doc);
        ASSERT_NE(it, score_of.end()) << what << " doc " << got[i].doc << " scores 0";
        EXPECT_NEAR(got[i].score, it->second, 1e-4f * std::max(1.0f, it->second)) << what << " doc " << got[i].doc;
        if (i > 0) EXPECT_TRUE(got[i - 1].score >= got[i].score) << what;
    }
}

TEST(FilterWalk, EveryRegimeEqualsFilteredBruteForce) {
    const std::uint32_t n = 5000;
    std::mt19937 rng(5);
    PostingStore bm = zipf_store(WeightType::kFrequency, n, 150, 3);
    std::vector<std::uint8_t> norms(n);
    for (auto& x : norms) x = encode_norm(1 + rng() % 300);
    const std::vector<float> built = norm_table(40.0f);
    bm.compute_block_scores([&](TermId, DocIndex d, float tf) { return 1.0f - 1.0f / (1.0f + tf * built[norms[d]]); });
    // Scored with another table (collection-wide statistics), bounds rescaled.
    const std::vector<float> other = norm_table(160.0f);
    float scale = 1.0f;
    for (std::size_t i = 0; i < 256; ++i) scale = std::max(scale, other[i] / built[i]);
    const PostingStore dot = zipf_store(WeightType::kFloat32, n, 150, 4);
    const PostingStore q8 = zipf_store(WeightType::kQuantized8, n, 150, 6);
    const std::pair<const PostingStore*, Scorer> cases[] = {{&bm, Bm25Scorer{norms, built}},
                                                            {&bm, Bm25Scorer{norms, other, scale}},
                                                            {&dot, DotProductScorer{}},
                                                            {&q8, DotProductScorer{}}};
    std::vector<std::uint32_t> dead;
    for (std::uint32_t d = 0; d < n; ++d) {
        if (rng() % 10 == 0) dead.push_back(d);
    }
    const DeletedDocs deleted = DeletedDocs().with(dead);
    const FilterWalk walks[] = {FilterWalk::kAuto, FilterWalk::kMask, FilterWalk::kSeek, FilterWalk::kBitmap};
    const double shares[] = {0.0, 1.0 / n, 0.001, 0.01, 0.05, 0.2, 0.5, 0.9, 1.0};
    std::map<FilterWalk, int> auto_chose;
    int checked = 0;
    for (double share : shares) {
        for (int shape = 0; shape < 2; ++shape) {
            const Bitmap filter = share >= 1.0 ? Bitmap::range(0, n) : make_filter(n, share, shape, rng);
            for (int with_deletes = 0; with_deletes < 2; ++with_deletes) {
                const AllowedDocs allowed = with_deletes ? AllowedDocs::of(&deleted, &filter) : AllowedDocs{nullptr, &filter};
                for (int q = 0; q < 3; ++q) {
                    std::vector<QueryTerm> query;
                    const int len = 1 + static_cast<int>(rng() % 6);
                    for (int i = 0; i < len; ++i) {
                        // Frequent and rare terms both (term 0 is in ~70% of the documents).
                        const TermId t = i == 0 ? static_cast<TermId>(rng() % 4) : static_cast<TermId>(rng() % 160);
                        query.push_back({t, std::uniform_real_distribution<float>(0.2f, 4.0f)(rng)});
                    }
                    for (const auto& [store, scorer] : cases) {
                        std::map<DocIndex, float> score_of;
                        for (const auto& d : search_exhaustive(*store, query, n, scorer)) score_of[d.doc] = d.score;
                        for (std::size_t k : {1u, 10u, 100u}) {
                            const auto want = search_exhaustive(*store, query, k, scorer, &allowed);
                            for (FilterWalk w : walks) {
                                FilterWalkParams params;
                                params.force = w;
                                TopKStats stats;
                                const auto got = search_top_k(*store, query, k, scorer, &stats, &allowed, params);
                                expect_exact(got, want, score_of, allowed, to_string(w));
                                if (w != FilterWalk::kAuto) {
                                    EXPECT_EQ(stats.walk, w);
                                } else {
                                    ++auto_chose[stats.walk];
                                }
                                ++checked;
                            }
                        }
                    }
                }
            }
        }
    }
    EXPECT_EQ(checked, 9 * 2 * 2 * 3 * 4 * 3 * 4);
    // The automatic choice used every regime over these selectivities.
    EXPECT_GT(auto_chose[FilterWalk::kBitmap], 0);
    EXPECT_GT(auto_chose[FilterWalk::kSeek], 0);
    EXPECT_GT(auto_chose[FilterWalk::kMask], 0);
}

TEST(FilterWalk, ChoiceAtTheBoundaries) {
    // Mask from 15% selectivity (7% for a query the window scan takes: at most 4 lists holding at
    // least 10% of the documents); bitmap when m * t <= 0.25 * postings.
    const FilterWalkParams p;
    EXPECT_EQ(choose_filter_walk(p, false, 10, 1000, 2, 50), FilterWalk::kMask);  // deletes only
    // Bitmap-driven: 250 members x 2 terms = 500 <= 0.25 x 2000 postings; one more member is not.
    EXPECT_EQ(choose_filter_walk(p, true, 250, 100000, 2, 2000), FilterWalk::kBitmap);
    EXPECT_EQ(choose_filter_walk(p, true, 251, 100000, 2, 2000), FilterWalk::kSeek);
    EXPECT_EQ(choose_filter_walk(p, true, 0, 100000, 2, 2000), FilterWalk::kBitmap);  // empty filter
    // Mask from exactly 15% of the documents for a MaxScore query: sparse lists, or more than 4.
    EXPECT_EQ(choose_filter_walk(p, true, 15000, 100000, 3, 1000), FilterWalk::kMask);
    EXPECT_EQ(choose_filter_walk(p, true, 14999, 100000, 3, 1000), FilterWalk::kSeek);
    EXPECT_EQ(choose_filter_walk(p, true, 15000, 100000, 5, 40000), FilterWalk::kMask);
    EXPECT_EQ(choose_filter_walk(p, true, 14999, 100000, 5, 40000), FilterWalk::kSeek);
    // From 7% for a window-scan query (4 lists, 10,000 postings = 10% of the documents; 0.07 x 100,000
    // is 7000.000000000001 in doubles, so the first member past it is the boundary).
    EXPECT_EQ(choose_filter_walk(p, true, 7001, 100000, 4, 10000), FilterWalk::kMask);
    EXPECT_EQ(choose_filter_walk(p, true, 6999, 100000, 4, 10000), FilterWalk::kSeek);
    EXPECT_EQ(choose_filter_walk(p, true, 7001, 100000, 4, 9999), FilterWalk::kSeek);  // not dense: 15%
    EXPECT_EQ(choose_filter_walk(p, true, 14999, 100000, 4, 9999), FilterWalk::kSeek);
    // The bitmap test comes first: a cheap matching set wins even when it is a large share.
    EXPECT_EQ(choose_filter_walk(p, true, 60, 100, 1, 240), FilterWalk::kBitmap);
    FilterWalkParams forced = p;
    for (FilterWalk w : {FilterWalk::kMask, FilterWalk::kSeek, FilterWalk::kBitmap}) {
        forced.force = w;
        EXPECT_EQ(choose_filter_walk(forced, true, 1, 100000, 1, 100000), w);
        EXPECT_EQ(choose_filter_walk(forced, false, 1, 100000, 1, 100000), FilterWalk::kMask);
    }

    // The same decisions inside search_top_k, over one list: term 0 in docs 0..999. The walk a filter
    // of the first `members` documents gets (and that it returns what exhaustive scoring returns).
    const std::vector<QueryTerm> query = {{0, 1.0f}};
    auto store_of = [](std::uint32_t num_docs) {
        PostingsBuilder b(WeightType::kFloat32);
        b.set_num_docs(num_docs);
        for (DocIndex d = 0; d < 1000; ++d) b.add(0, d, 1.0f + static_cast<float>(d % 13));
        auto built = b.build();
        EXPECT_TRUE(built.ok());
        return std::move(built).value();
    };
    auto walk_for = [&](const PostingStore& store, std::uint32_t members) {
        const Bitmap f = Bitmap::range(0, members);
        const AllowedDocs allowed{nullptr, &f};
        TopKStats stats;
        const auto got = search_top_k(store, query, 10, DotProductScorer{}, &stats, &allowed);
        EXPECT_TRUE(same(got, search_exhaustive(store, query, 10, DotProductScorer{}, &allowed))) << members;
        return stats.walk;
    };
    // In 20,000 documents (doc_freq 1000: 5%, too sparse for the window scan): the mask from 15%.
    const PostingStore sparse_store = store_of(20000);
    EXPECT_EQ(walk_for(sparse_store, 250), FilterWalk::kBitmap);
    EXPECT_EQ(walk_for(sparse_store, 251), FilterWalk::kSeek);
    EXPECT_EQ(walk_for(sparse_store, 2999), FilterWalk::kSeek);
    EXPECT_EQ(walk_for(sparse_store, 3000), FilterWalk::kMask);
    TopKStats none;
    search_top_k(sparse_store, query, 10, DotProductScorer{}, &none);
    EXPECT_EQ(none.walk, FilterWalk::kNone);
    // In 4,000 documents (25%: the window scan's): the mask from 7% (past 280 members).
    const PostingStore dense_store = store_of(4000);
    EXPECT_EQ(walk_for(dense_store, 250), FilterWalk::kBitmap);
    EXPECT_EQ(walk_for(dense_store, 251), FilterWalk::kSeek);
    EXPECT_EQ(walk_for(dense_store, 279), FilterWalk::kSeek);
    EXPECT_EQ(walk_for(dense_store, 281), FilterWalk::kMask);
}

TEST(FilterWalk, BitmapWalkCostFollowsTheFilterNotTheLists) {
    // One list holding every document; a filter of 100 spread members. The bitmap-driven walk scores
    // at most the 100 members; the mask walk visits the whole list to find them.
    const std::uint32_t n = 200000;
    PostingsBuilder b(WeightType::kFloat32);
    b.set_num_docs(n);
    for (DocIndex d = 0; d < n; ++d) b.add(0, d, 1.0f + static_cast<float>((d * 7919u) % 1000) / 100.0f);
    auto built = b.build();
    ASSERT_TRUE(built.ok());
    const PostingStore store = std::move(built).value();
    Bitmap f;
    for (DocIndex d = 17; d < n; d += 2000) f.add(d);
    ASSERT_EQ(f.cardinality(), 100u);
    const AllowedDocs allowed{nullptr, &f};
    const std::vector<QueryTerm> query = {{0, 2.0f}};
    const auto want = search_exhaustive(store, query, 10, DotProductScorer{}, &allowed);
    for (FilterWalk w : {FilterWalk::kBitmap, FilterWalk::kSeek}) {
        FilterWalkParams p;
        p.force = w;
        TopKStats stats;
        EXPECT_TRUE(same(search_top_k(store, query, 10, DotProductScorer{}, &stats, &allowed, p), want)) << to_string(w);
        EXPECT_LE(stats.docs_scored, 100u) << to_string(w);
        EXPECT_GE(stats.filter_seeks, 100u) << to_string(w);
        EXPECT_LE(stats.filter_seeks, 404u) << to_string(w);  // a few cursor moves per member, not per posting
    }
    TopKStats auto_stats;
    search_top_k(store, query, 10, DotProductScorer{}, &auto_stats, &allowed);
    EXPECT_EQ(auto_stats.walk, FilterWalk::kBitmap);
}

TEST(FilterWalk, Bm25IndexFilteredSearchEqualsExhaustive) {
    // The library path: Bm25Index::search_with_stats with a filter (own and foreign statistics).
    std::vector<std::string> ids, texts;
    std::mt19937 rng(17);
    const char* words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma"};
    for (int i = 0; i < 3000; ++i) {
        ids.push_back("d" + std::to_string(i));
        std::string t;
        const int len = 3 + static_cast<int>(rng() % 20);
        for (int j = 0; j < len; ++j) {
            t += words[std::min<std::size_t>(9, static_cast<std::size_t>(std::floor(std::exp(std::uniform_real_distribution<double>(0, 2.3)(rng))) - 1))];
            t += ' ';
        }
        texts.push_back(t);
    }
    std::vector<Bm25Document> docs;
    for (std::size_t i = 0; i < ids.size(); ++i) docs.push_back({ids[i], "", texts[i]});
    auto idx = Bm25Index::build(docs, {});
    ASSERT_TRUE(idx.ok()) << idx.error().to_string();
    for (double share : {0.002, 0.03, 0.3, 0.8}) {
        const Bitmap f = make_filter(3000, share, 0, rng);
        const AllowedDocs allowed{nullptr, &f};
        for (const std::vector<std::string>& terms :
             {std::vector<std::string>{"alpha"}, std::vector<std::string>{"alpha", "sigma"},
              std::vector<std::string>{"beta", "gamma", "kappa", "kappa"}}) {
            Bm25QueryStats stats = idx->query_stats(terms);
            for (int foreign = 0; foreign < 2; ++foreign) {
                if (foreign) {
                    stats.doc_count *= 3;
                    stats.total_tokens *= 5;
                }
                for (std::size_t k : {1u, 10u, 50u}) {
                    TopKStats walk;
                    const auto got = idx->search_with_stats(stats, k, &allowed, &walk);
                    const auto want = idx->search_with_stats(stats, k, &allowed, nullptr, true);
                    ASSERT_EQ(got.size(), want.size()) << share;
                    for (std::size_t i = 0; i < got.size(); ++i) {
                        EXPECT_NEAR(got[i].score, want[i].score, 1e-4f * std::max(1.0f, want[i].score));
                        EXPECT_TRUE(f.contains(got[i].doc));
                    }
                    EXPECT_NE(walk.walk, FilterWalk::kNone);
                }
            }
        }
    }
}

}  // namespace
}  // namespace quiver::sparse
