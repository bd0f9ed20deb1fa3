#include "quiver/sparse/seismic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <thread>

#include "quiver/sparse/exact_sparse.h"
#include "quiver/sparse/synthetic.h"
#include "testing/testing.h"

namespace quiver::sparse {
namespace {

// One small generated collection shared by the tests (built once).
const SyntheticData& data() {
    static const SyntheticData d = [] {
        SyntheticParams p;  // a scaled-down SPLADE-like collection keeps the suite quick
        p.docs = 3000;
        p.queries = 100;
        p.vocab = 5000;
        p.topics = 30;
        p.topic_terms = 100;
        p.min_doc_nnz = 40;
        p.max_doc_nnz = 80;
        p.min_query_nnz = 10;
        p.max_query_nnz = 25;
        p.seed = 7;
        auto r = generate_synthetic(p);
        EXPECT_TRUE(r);
        return std::move(*r);
    }();
    return d;
}

SeismicBuildParams small_params() {
    SeismicBuildParams p;
    p.n_postings = 20;
    p.centroid_fraction = 0.1f;
    p.summary_energy = 0.4f;
    p.threads = 2;
    return p;
}

// The index most tests share (built once).
const SeismicIndex& shared_index() {
    static const SeismicIndex ix = [] {
        auto r = SeismicIndex::build(data().docs, small_params());
        EXPECT_TRUE(r);
        return std::move(*r);
    }();
    return ix;
}

// Recall@k of `ix` against brute force; also checks that scores are exact (relative `tol`) and sorted.
double recall(const SeismicIndex& ix, const SeismicSearchParams& sp, float tol = 1e-5f) {
    const SyntheticData& d = data();
    double hit = 0, total = 0;
    SeismicSearcher s(ix);
    for (std::size_t i = 0; i < d.queries.size(); ++i) {
        const auto truth = brute_force_top_k(d.docs, d.queries.vectors[i].view(), sp.k);
        const auto got = s.search(d.queries.vectors[i].view(), sp);
        for (const auto& t : truth) {
            total += 1;
            for (const auto& g : got) hit += g.doc == t.doc ? 1 : 0;
        }
        // Scores are exact inner products, best first.
        for (std::size_t j = 0; j < got.size(); ++j) {
            const float want = dot(d.queries.vectors[i].view(), d.docs.row(got[j].doc));
            EXPECT_NEAR(got[j].score, want, tol * std::max(1.0f, want));
            if (j > 0) {
                EXPECT_GE(got[j - 1].score, got[j].score);
            }
        }
    }
    return hit / total;
}

TEST(Seismic, RecallFloors) {
    const SeismicIndex* ix = &shared_index();
    SeismicSearchParams sp;
    sp.k = 10;
    sp.query_cut = 10;
    sp.heap_factor = 0.9f;
    EXPECT_GE(recall(*ix, sp), 0.95);
    sp.query_cut = 3;
    sp.heap_factor = 1.0f;
    EXPECT_GE(recall(*ix, sp), 0.80);
    const SeismicStats st = ix->stats();
    EXPECT_LT(st.postings, st.nnz);  // static pruning kept a subset
    EXPECT_GT(st.blocks, 0u);
}

// At full budget Seismic is exact: no pruning (every list keeps all its postings), every query term's
// list scanned (query_cut >= query nnz), no block skipped (heap_factor 0): every document that shares
// a term with the query is scored from the f32 forward index, so the top-k equals brute force.
TEST(Seismic, EqualsExactAtFullBudget) {
    const SyntheticData& d = data();
    SeismicBuildParams bp = small_params();
    bp.n_postings = static_cast<std::uint32_t>(d.docs.size());
    bp.max_fraction = 1.0f;
    auto ix = SeismicIndex::build(d.docs, bp);
    ASSERT_TRUE(ix);
    EXPECT_EQ(ix->stats().postings, ix->stats().nnz);  // nothing pruned
    SeismicSearchParams sp;
    sp.query_cut = 1000;
    sp.heap_factor = 0.0f;
    for (std::size_t k : {1u, 10u, 50u}) {
        sp.k = k;
        for (std::size_t i = 0; i < d.queries.size(); ++i) {
            const auto got = ix->search(d.queries.vectors[i].view(), sp);
            const auto want = brute_force_top_k(d.docs, d.queries.vectors[i].view(), k);
            ASSERT_EQ(got.size(), want.size()) << "query " << i;
            for (std::size_t j = 0; j < got.size(); ++j) {
                EXPECT_NEAR(got[j].score, want[j].score, 1e-5f * std::max(1.0f, want[j].score));
                if ((j == 0 || want[j - 1].score - want[j].score > 1e-4f) &&
                    (j + 1 == want.size() || want[j].score - want[j + 1].score > 1e-4f)) {
                    EXPECT_EQ(got[j].doc, want[j].doc) << "query " << i << " rank " << j;
                }
            }
        }
    }
}

// Summaries are rounded up, so with summary_energy 1 and no cap every block summary bounds every
// document of its block: skipping a block whose summary score is below the k-th score loses nothing.
// Without static pruning and with every query list scanned, search at heap_factor just under 1 is exact.
TEST(Seismic, UntrimmedSummariesAreUpperBounds) {
    const SyntheticData& d = data();
    SeismicBuildParams bp = small_params();
    bp.n_postings = static_cast<std::uint32_t>(d.docs.size());
    bp.max_fraction = 1.0f;
    bp.summary_energy = 1.0f;
    auto ix = SeismicIndex::build(d.docs, bp);
    ASSERT_TRUE(ix);
    EXPECT_EQ(ix->stats().unsummarised_blocks, 0u);
    SeismicSearchParams sp;
    sp.query_cut = 1000;
    sp.heap_factor = 0.999f;
    sp.k = 10;
    std::size_t scored = 0, matching = 0;
    for (std::size_t i = 0; i < d.queries.size(); ++i) {
        std::size_t n_eval = 0;
        SeismicSearcher s(*ix);
        const auto got = s.search(d.queries.vectors[i].view(), sp, &n_eval);
        const auto want = brute_force_top_k(d.docs, d.queries.vectors[i].view(), sp.k);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t j = 0; j < got.size(); ++j)
            EXPECT_NEAR(got[j].score, want[j].score, 1e-5f * std::max(1.0f, want[j].score)) << "query " << i;
        scored += n_eval;
        for (std::size_t r = 0; r < d.docs.size(); ++r) matching += dot(d.docs.row(r), d.queries.vectors[i].view()) > 0 ? 1 : 0;
    }
    EXPECT_LT(scored, matching);  // the bounds did skip blocks
}

// Lists shorter than summary_min_postings are one block without a summary, scanned whenever picked.
TEST(Seismic, ShortListsWithoutSummariesAreAlwaysScanned) {
    const SyntheticData& d = data();
    SeismicBuildParams bp = small_params();
    bp.n_postings = static_cast<std::uint32_t>(d.docs.size());
    bp.max_fraction = 1.0f;
    bp.summary_min_postings = 1u << 30;  // every list
    auto ix = SeismicIndex::build(d.docs, bp);
    ASSERT_TRUE(ix);
    const SeismicStats st = ix->stats();
    std::vector<char> used(d.docs.dim(), 0);
    for (TermId t : d.docs.terms) used[t] = 1;
    EXPECT_EQ(st.blocks, static_cast<std::size_t>(std::count(used.begin(), used.end(), 1)));  // one per list
    EXPECT_EQ(st.unsummarised_blocks, st.blocks);
    EXPECT_EQ(st.summary_entries, 0u);
    SeismicSearchParams sp;
    sp.query_cut = 1000;
    sp.heap_factor = 1.0f;  // nothing can be skipped: no summaries
    for (std::size_t i = 0; i < 30; ++i) {
        const auto got = ix->search(d.queries.vectors[i].view(), sp);
        const auto want = brute_force_top_k(d.docs, d.queries.vectors[i].view(), sp.k);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t j = 0; j < got.size(); ++j) EXPECT_NEAR(got[j].score, want[j].score, 1e-5f * std::max(1.0f, want[j].score));
    }
    // A middle threshold splits the lists; the short ones cost no summary bytes.
    bp = small_params();
    bp.summary_min_postings = 15;
    auto mixed = SeismicIndex::build(d.docs, bp);
    ASSERT_TRUE(mixed);
    const SeismicStats ms = mixed->stats(), full = shared_index().stats();
    EXPECT_GT(ms.unsummarised_blocks, 0u);
    EXPECT_LT(ms.unsummarised_blocks, ms.blocks);
    EXPECT_LT(ms.summary_entries, full.summary_entries);
    sp.query_cut = 10;
    sp.heap_factor = 0.9f;
    EXPECT_GE(recall(*mixed, sp), 0.95);
}

// The summary layout costs exactly: u64 entry offset + f32 scale per block, u16 term + u8 code per entry
// (the vocabulary has 5,000 terms), and a cap bounds the entries per block.
TEST(Seismic, CompactSummaryLayoutAndCap) {
    const SeismicStats full = shared_index().stats();
    EXPECT_EQ(full.summary_bytes, (full.blocks + 1) * 8 + full.blocks * 4 + full.summary_entries * 3);
    SeismicBuildParams bp = small_params();
    bp.summary_max_entries = 6;
    auto capped = SeismicIndex::build(data().docs, bp);
    ASSERT_TRUE(capped);
    const SeismicStats st = capped->stats();
    EXPECT_EQ(st.blocks, full.blocks);  // same clustering
    EXPECT_LE(st.summary_entries, 6 * st.blocks);
    EXPECT_LT(st.summary_entries, full.summary_entries);
    SeismicSearchParams sp;
    sp.query_cut = 10;
    sp.heap_factor = 0.9f;
    EXPECT_GE(recall(*capped, sp), 0.90);
}

// A capped summary always keeps the list's own term: with one entry per summary, that entry bounds a
// single-term query's score on every document of the block, so single-term search stays exact.
TEST(Seismic, CappedSummariesKeepTheListTerm) {
    const SyntheticData& d = data();
    SeismicBuildParams bp = small_params();
    bp.n_postings = static_cast<std::uint32_t>(d.docs.size());
    bp.max_fraction = 1.0f;
    bp.summary_max_entries = 1;
    auto ix = SeismicIndex::build(d.docs, bp);
    ASSERT_TRUE(ix);
    EXPECT_EQ(ix->stats().summary_entries, ix->stats().blocks);
    SeismicSearchParams sp;
    sp.heap_factor = 0.999f;
    std::size_t scored = 0, matching = 0;
    for (std::size_t i = 0; i < 30; ++i) {
        const SparseVectorView full = d.queries.vectors[i].view();
        SparseVector q{{full.terms[0]}, {2.0f}};
        std::size_t n_eval = 0;
        SeismicSearcher s(*ix);
        const auto got = s.search(q.view(), sp, &n_eval);
        const auto want = brute_force_top_k(d.docs, q.view(), sp.k);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t j = 0; j < got.size(); ++j) EXPECT_NEAR(got[j].score, want[j].score, 1e-5f * want[j].score);
        scored += n_eval;
        for (std::size_t r = 0; r < d.docs.size(); ++r) matching += dot(d.docs.row(r), q.view()) > 0 ? 1 : 0;
    }
    EXPECT_LT(scored, matching);
}

// SeismicIndex::search reuses pooled searchers (no O(N) allocation per query), also from several
// threads at once and after the index has moved.
TEST(Seismic, SearchPoolReusesSearchersAcrossThreadsAndMoves) {
    const SyntheticData& d = data();
    auto built = SeismicIndex::build(d.docs, small_params());
    ASSERT_TRUE(built);
    SeismicIndex ix = std::move(*built);
    SeismicSearchParams sp;
    std::vector<std::vector<SparseHit>> want;
    SeismicSearcher s(ix);
    for (const auto& q : d.queries.vectors) want.push_back(s.search(q.view(), sp));
    EXPECT_EQ(ix.pooled_searchers(), 0u);
    for (std::size_t i = 0; i < 20; ++i) (void)ix.search(d.queries.vectors[i].view(), sp);
    EXPECT_EQ(ix.pooled_searchers(), 1u);  // one sequential caller: one searcher, reused
    SeismicIndex moved = std::move(ix);
    std::vector<std::thread> threads;
    std::vector<int> mismatches(3, 0);
    for (int t = 0; t < 3; ++t) {
        threads.emplace_back([&, t] {
            for (std::size_t i = 0; i < d.queries.size(); ++i) {
                const auto got = moved.search(d.queries.vectors[i].view(), sp);
                if (got.size() != want[i].size()) {
                    ++mismatches[t];
                    continue;
                }
                for (std::size_t j = 0; j < got.size(); ++j) mismatches[t] += got[j].doc != want[i][j].doc;
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches, (std::vector<int>{0, 0, 0}));
    EXPECT_GE(moved.pooled_searchers(), 1u);
    EXPECT_LE(moved.pooled_searchers(), 3u);
}

TEST(Seismic, Bf16ForwardIndexKeepsRecall) {
    SeismicBuildParams p = small_params();
    p.weights = WeightFormat::kBf16;
    auto ix = SeismicIndex::build(data().docs, p);
    ASSERT_TRUE(ix);
    SeismicSearchParams sp;
    sp.query_cut = 10;
    EXPECT_GE(recall(*ix, sp, 1e-2f), 0.95);  // bf16 weights: scores within ~0.4%
    EXPECT_LT(ix->stats().forward_bytes, shared_index().stats().forward_bytes);
}

TEST(Seismic, FixedSizePruningAndSingleThreadBuildMatch) {
    SeismicBuildParams p = small_params();
    p.pruning = SeismicBuildParams::Pruning::kFixedSize;
    p.threads = 1;
    auto a = SeismicIndex::build(data().docs, p);
    p.threads = 2;
    auto b = SeismicIndex::build(data().docs, p);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->stats().postings, b->stats().postings);
    EXPECT_EQ(a->stats().summary_entries, b->stats().summary_entries);
    SeismicSearchParams sp;
    const auto& q = data().queries.vectors[0];
    const auto ra = a->search(q.view(), sp), rb = b->search(q.view(), sp);
    ASSERT_EQ(ra.size(), rb.size());
    for (std::size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].doc, rb[i].doc);
}

TEST(Seismic, SaveOpenRoundTrip) {
    testing::TempDir dir;
    const SeismicIndex* ix = &shared_index();
    const std::string path = dir.file("idx.seis");
    ASSERT_TRUE(ix->save(path));
    auto back = SeismicIndex::open(path);
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(back->size(), ix->size());
    EXPECT_EQ(back->doc_id(123), "123");
    EXPECT_EQ(back->stats().total_bytes(), ix->stats().total_bytes());
    EXPECT_EQ(back->params().n_postings, 20u);
    SeismicSearchParams sp;
    sp.query_cut = 5;
    for (std::size_t i = 0; i < 20; ++i) {
        const auto& q = data().queries.vectors[i];
        const auto a = ix->search(q.view(), sp), b = back->search(q.view(), sp);
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t j = 0; j < a.size(); ++j) {
            EXPECT_EQ(a[j].doc, b[j].doc);
            EXPECT_EQ(a[j].score, b[j].score);
        }
    }
}

TEST(Seismic, CorruptTruncatedAndForeignFilesAreRejected) {
    testing::TempDir dir;
    const std::string path = dir.file("idx.seis");
    ASSERT_TRUE(shared_index().save(path));
    const std::string good = testing::read_bytes(path);

    std::string flipped = good;
    flipped[good.size() / 3] ^= 0x10;
    testing::write_bytes(path, flipped);
    auto r1 = SeismicIndex::open(path);
    ASSERT_FALSE(r1);
    EXPECT_EQ(r1.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(r1.error().message().find(path), std::string::npos) << r1.error().message();

    testing::write_bytes(path, good.substr(0, good.size() - 100));
    auto r2 = SeismicIndex::open(path);
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code(), ErrorCode::kDataLoss);

    testing::write_bytes(path, "not an index");
    EXPECT_FALSE(SeismicIndex::open(path));

    auto exact = ExactSparseIndex::build(data().docs);
    ASSERT_TRUE(exact);
    ASSERT_TRUE(exact->save(path));
    auto r3 = SeismicIndex::open(path);  // a valid quiver file of another kind
    ASSERT_FALSE(r3);

    auto r4 = SeismicIndex::open(dir.file("missing.seis"));
    ASSERT_FALSE(r4);
}

TEST(Seismic, EmptyUnknownAndEdgeQueries) {
    SparseCollection c;
    c.vocab = Vocabulary::integer(10);
    ASSERT_TRUE(c.add("a", SparseVector{{1, 2}, {1.0f, 2.0f}}));
    ASSERT_TRUE(c.add("empty", SparseVector{}));
    ASSERT_TRUE(c.add("b", SparseVector{{2, 3}, {0.5f, 1.0f}}));
    auto ix = SeismicIndex::build(c, small_params());
    ASSERT_TRUE(ix) << ix.error().to_string();
    SeismicSearchParams sp;
    EXPECT_TRUE(ix->search(SparseVectorView{}, sp).empty());
    SparseVector unknown{{2, 50}, {1.0f, 5.0f}};  // term 50 is beyond the vocabulary: ignored
    const auto hits = ix->search(unknown.view(), sp);
    ASSERT_EQ(hits.size(), 2u);
    EXPECT_EQ(ix->doc_id(hits[0].doc), "a");
    EXPECT_FLOAT_EQ(hits[0].score, 2.0f);
    for (const auto& h : hits) EXPECT_NE(ix->doc_id(h.doc), "empty");  // empty documents are never hits
    sp.k = 0;
    EXPECT_TRUE(ix->search(unknown.view(), sp).empty());
}

TEST(Seismic, KnnGraphRefinementRoundTrips) {
    testing::TempDir dir;
    SeismicBuildParams p = small_params();
    p.knn = 5;
    auto ix = SeismicIndex::build(data().docs, p);
    ASSERT_TRUE(ix) << ix.error().to_string();
    EXPECT_EQ(ix->stats().knn_bytes, data().docs.size() * 5 * sizeof(std::uint32_t));
    SeismicSearchParams sp;
    sp.query_cut = 2;
    sp.heap_factor = 1.0f;
    const double plain = recall(*ix, sp);
    sp.n_knn = 5;
    const double refined = recall(*ix, sp);
    EXPECT_GE(refined, plain);  // refinement only adds exactly scored candidates
    ASSERT_TRUE(ix->save(dir.file("knn.seis")));
    auto back = SeismicIndex::open(dir.file("knn.seis"));
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(back->params().knn, 5u);
    const auto& q = data().queries.vectors[1];
    const auto a = ix->search(q.view(), sp), b = back->search(q.view(), sp);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t j = 0; j < a.size(); ++j) EXPECT_EQ(a[j].doc, b[j].doc);
}

// Incremental add: rows added after a build are found at once (exact tail), ids and row numbers
// continue, merge() rebuilds into the same results as a build over everything, save() needs a merge.
TEST(Seismic, IncrementalAddTailAndMerge) {
    testing::TempDir dir;
    const SyntheticData& d = data();
    const std::size_t half = d.docs.size() / 2;
    SparseCollection first;
    first.vocab = d.docs.vocab;
    for (std::size_t r = 0; r < half; ++r) first.append_canonical(d.docs.ids[r], d.docs.row(r));
    SeismicBuildParams bp = small_params();
    bp.n_postings = static_cast<std::uint32_t>(d.docs.size());
    bp.max_fraction = 1.0f;
    auto built = SeismicIndex::build(first, bp);
    ASSERT_TRUE(built);
    SeismicIndex ix = std::move(*built);
    SeismicSearchParams sp;
    sp.query_cut = 1000;
    sp.heap_factor = 0.0f;  // full budget: the built part is exact too, so every answer is brute force
    (void)ix.search(d.queries.vectors[0].view(), sp);  // a pooled searcher sized before the adds
    for (std::size_t r = half; r < d.docs.size(); ++r) ASSERT_TRUE(ix.add(d.docs.ids[r], d.docs.row(r)));
    EXPECT_EQ(ix.size(), d.docs.size());
    EXPECT_EQ(ix.tail_size(), d.docs.size() - half);
    EXPECT_EQ(ix.doc_id(static_cast<std::uint32_t>(half + 5)), d.docs.ids[half + 5]);
    auto check = [&](const SeismicIndex& x) {
        for (std::size_t i = 0; i < 40; ++i) {
            const auto got = x.search(d.queries.vectors[i].view(), sp);
            const auto want = brute_force_top_k(d.docs, d.queries.vectors[i].view(), sp.k);
            ASSERT_EQ(got.size(), want.size());
            for (std::size_t j = 0; j < got.size(); ++j)
                EXPECT_NEAR(got[j].score, want[j].score, 1e-5f * std::max(1.0f, want[j].score)) << "query " << i;
        }
    };
    check(ix);
    // A query matching only an added row finds it.
    const auto& last = d.docs.row(d.docs.size() - 1);
    SparseVector q{{last.terms.begin(), last.terms.end()}, {last.weights.begin(), last.weights.end()}};
    const auto self = ix.search(q.view(), sp);
    ASSERT_FALSE(self.empty());
    EXPECT_NEAR(self[0].score, dot(q.view(), last), 1e-4f);

    auto saved = ix.save(dir.file("t.seis"));
    ASSERT_FALSE(saved);
    EXPECT_EQ(saved.error().code(), ErrorCode::kFailedPrecondition);
    // Bad rows are refused and leave the tail unchanged.
    SparseVector beyond{{1, d.docs.dim()}, {1.0f, 1.0f}}, unsorted{{5, 2}, {1.0f, 1.0f}}, negative{{1}, {-1.0f}};
    EXPECT_EQ(ix.add("x", beyond.view()).error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(ix.add("x", unsorted.view()).error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(ix.add("x", negative.view()).error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(ix.size(), d.docs.size());

    ASSERT_TRUE(ix.merge());
    EXPECT_EQ(ix.tail_size(), 0u);
    EXPECT_EQ(ix.size(), d.docs.size());
    auto whole = SeismicIndex::build(d.docs, bp);
    ASSERT_TRUE(whole);
    EXPECT_EQ(ix.stats().postings, whole->stats().postings);
    EXPECT_EQ(ix.stats().summary_entries, whole->stats().summary_entries);
    check(ix);
    ASSERT_TRUE(ix.save(dir.file("t.seis")));
    auto back = SeismicIndex::open(dir.file("t.seis"));
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(back->doc_id(static_cast<std::uint32_t>(half + 5)), d.docs.ids[half + 5]);
    // An opened index takes adds too.
    ASSERT_TRUE(back->add("new", q.view()));
    const auto again = back->search(q.view(), sp);
    ASSERT_GE(again.size(), 2u);
    EXPECT_NEAR(again[0].score, again[1].score, 1e-4f * again[0].score);  // the row and its copy
    bool found = false;
    for (const auto& h : again) found = found || back->doc_id(h.doc) == "new";
    EXPECT_TRUE(found);
}

TEST(Seismic, EmptyCollection) {
    testing::TempDir dir;
    SparseCollection c;
    auto ix = SeismicIndex::build(c, small_params());
    ASSERT_TRUE(ix) << ix.error().to_string();
    SparseVector q{{0}, {1.0f}};
    EXPECT_TRUE(ix->search(q.view(), SeismicSearchParams{}).empty());
    ASSERT_TRUE(ix->save(dir.file("empty.seis")));
    auto back = SeismicIndex::open(dir.file("empty.seis"));
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(back->size(), 0u);
}

TEST(Seismic, RejectsInvalidParameters) {
    SeismicBuildParams p = small_params();
    p.summary_energy = 0.0f;
    EXPECT_EQ(SeismicIndex::build(data().docs, p).error().code(), ErrorCode::kInvalidArgument);
    p = small_params();
    p.centroid_fraction = 1.5f;
    EXPECT_FALSE(SeismicIndex::build(data().docs, p));
    p = small_params();
    p.n_postings = 0;
    EXPECT_FALSE(SeismicIndex::build(data().docs, p));
    SparseCollection c;  // a hand-made collection whose terms exceed its vocabulary
    c.vocab = Vocabulary::integer(4);
    SparseVector v{{1, 9}, {1.0f, 1.0f}};
    c.append_canonical("x", v.view());
    auto bad = SeismicIndex::build(c, small_params());
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("beyond the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace quiver::sparse
