// The multi-vector index: exact and MUVERA searches against brute force, files, corruption.
#include <gtest/gtest.h>

#include <filesystem>

#include "mv_data.h"
#include "quiver/multivector/multivector_index.h"
#include "testing/testing.h"

namespace quiver::multivector {
namespace {

using testing::TempDir;

struct Data {
    Matrix<float> vocab = testdata::vocabulary(1500, 32, 30, 21);
    std::vector<Matrix<float>> docs = testdata::sets(vocab, 30, 2000, 3, 30, 22);
    std::vector<Matrix<float>> queries = testdata::sets(vocab, 30, 40, 2, 10, 23);
};

std::vector<std::string> names(std::size_t n) {
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < n; ++i) ids.push_back("doc" + std::to_string(i));
    return ids;
}

std::unique_ptr<MultiVectorIndex> make(const Data& d, SearchMethod method, const std::string& fde,
                                       TokenCodec codec = TokenCodec::kFloat32) {
    MultiVectorBuildParams p;
    p.method = method;
    p.fde_index = fde;
    p.muvera = {.k_sim = 4, .d_proj = 16, .r_reps = 8, .seed = 5};
    p.hnsw.threads = 1;  // deterministic graphs, so the recall figures below are exact
    p.hnsw.ef_construction = 100;
    auto ix = MultiVectorIndex::build(testdata::store(d.docs, 32, codec), names(d.docs.size()), p);
    EXPECT_TRUE(ix.ok()) << ix.error().message();
    return std::move(*ix);
}

double recall(const MultiVectorIndex& ix, const Data& d, const MultiVectorSearchParams& sp) {
    TokenStore truth_store = testdata::store(d.docs, 32, TokenCodec::kFloat32);
    MaxSimScratch scratch;
    double total = 0;
    for (const auto& q : d.queries) {
        auto truth = exact_search(truth_store, q.view(), sp.k, scratch);
        auto got = ix.search(q.view(), sp);
        EXPECT_TRUE(got.ok());
        std::size_t hit = 0;
        for (const Hit& g : *got)
            for (const Hit& t : truth) hit += g.doc == t.doc;
        total += static_cast<double>(hit) / static_cast<double>(truth.size());
    }
    return total / static_cast<double>(d.queries.size());
}

TEST(MultiVectorIndex, ExactMethodIsBruteForce) {
    Data d;
    auto ix = make(d, SearchMethod::kExact, "hnsw");
    EXPECT_EQ(recall(*ix, d, {.k = 10}), 1.0);
    MultiVectorSearchStats st;
    ASSERT_TRUE(ix->search(d.queries[0].view(), {.k = 10}, &st).ok());
    EXPECT_EQ(st.candidates, 2000u);
}

TEST(MultiVectorIndex, MuveraWithEveryCandidateEqualsExact) {
    Data d;
    auto ix = make(d, SearchMethod::kMuvera, "flat");
    TokenStore s = testdata::store(d.docs, 32, TokenCodec::kFloat32);
    MaxSimScratch scratch;
    for (const auto& q : d.queries) {
        auto truth = exact_search(s, q.view(), 10, scratch);
        auto got = ix->search(q.view(), {.k = 10, .candidates = 2000});
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(got->size(), truth.size());
        for (std::size_t j = 0; j < truth.size(); ++j) {
            EXPECT_EQ((*got)[j].doc, truth[j].doc);
            EXPECT_EQ((*got)[j].score, truth[j].score);
        }
    }
}

TEST(MultiVectorIndex, MuveraCandidatesReachHighRecall) {
    Data d;
    auto flat = make(d, SearchMethod::kMuvera, "flat");
    auto hnsw = make(d, SearchMethod::kMuvera, "hnsw");
    // 5% of the collection re-ranked. Figures for these seeds; asserted with a margin.
    const double rf = recall(*flat, d, {.k = 10, .candidates = 100});
    const double rh = recall(*hnsw, d, {.k = 10, .candidates = 100, .ef = 200});
    std::printf("recall@10 with 100 candidates: flat FDE %.4f, HNSW FDE %.4f\n", rf, rh);
    EXPECT_GE(rf, 0.85);
    EXPECT_GE(rh, 0.83);

    // More candidates never hurt (the re-ranked set grows).
    EXPECT_GE(recall(*flat, d, {.k = 10, .candidates = 400}), rf);
}

TEST(MultiVectorIndex, SaveOpenSameAnswersMappedOrInMemory) {
    Data d;
    d.docs.resize(500);
    TempDir dir;
    for (TokenCodec codec : {TokenCodec::kFloat32, TokenCodec::kInt8}) {
        for (SearchMethod m : {SearchMethod::kExact, SearchMethod::kMuvera}) {
            auto ix = make(d, m, "hnsw", codec);
            const std::string path = dir.file("x.mvix");
            ASSERT_TRUE(ix->save(path).ok());
            EXPECT_EQ(std::filesystem::exists(path + ".fde"), m == SearchMethod::kMuvera);
            for (bool in_memory : {false, true}) {
                auto o = MultiVectorIndex::open(path, {.in_memory = in_memory});
                ASSERT_TRUE(o.ok()) << o.error().message();
                EXPECT_EQ((*o)->method(), m);
                EXPECT_EQ((*o)->store().codec(), codec);
                EXPECT_EQ((*o)->id(7), "doc7");
                for (std::size_t qi = 0; qi < 5; ++qi) {
                    auto a = ix->search(d.queries[qi].view(), {.k = 10});
                    auto b = (*o)->search(d.queries[qi].view(), {.k = 10});
                    ASSERT_EQ(a->size(), b->size());
                    for (std::size_t j = 0; j < a->size(); ++j) {
                        EXPECT_EQ((*a)[j].doc, (*b)[j].doc);
                        EXPECT_EQ((*a)[j].score, (*b)[j].score);
                    }
                }
            }
            std::filesystem::remove(path + ".fde");
        }
    }
}

TEST(MultiVectorIndex, RejectsBadQueriesAndParameters) {
    Data d;
    auto ix = make(d, SearchMethod::kMuvera, "flat");
    Matrix<float> wrong(2, 31);
    EXPECT_EQ(ix->search(wrong.view(), {.k = 10}).error().code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(ix->search(MatrixView<float>{nullptr, 0, 32}, {.k = 10})->empty());
    MultiVectorBuildParams p;
    p.fde_index = "ivf";
    EXPECT_EQ(MultiVectorIndex::build(testdata::store(d.docs, 32, TokenCodec::kFloat32), {}, p).error().code(),
              ErrorCode::kInvalidArgument);
    EXPECT_EQ(MultiVectorIndex::build(testdata::store(d.docs, 32, TokenCodec::kFloat32), names(3), {}).error().code(),
              ErrorCode::kInvalidArgument);
}

TEST(MultiVectorIndex, DamagedOrMismatchedFilesAreDataLoss) {
    TempDir dir;
    Data small;
    small.docs.resize(20);
    auto ix = make(small, SearchMethod::kMuvera, "flat");
    const std::string path = dir.file("x.mvix");
    ASSERT_TRUE(ix->save(path).ok());
    const std::string good = testing::read_bytes(path);
    const std::string good_fde = testing::read_bytes(path + ".fde");
    // Every byte of the index file.
    for (std::size_t i = 0; i < good.size(); i += (i < 1024 ? 1 : 211)) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x21);
        testing::write_bytes(path, bad);
        auto o = MultiVectorIndex::open(path);
        ASSERT_FALSE(o.ok()) << "byte " << i;
        EXPECT_TRUE(o.error().code() == ErrorCode::kDataLoss || o.error().code() == ErrorCode::kFailedPrecondition)
            << "byte " << i << ": " << o.error().message();
    }
    testing::write_bytes(path, good);
    ASSERT_TRUE(MultiVectorIndex::open(path).ok());
    // A damaged FDE file, a missing one, and another index's FDE file.
    std::string bad_fde = good_fde;
    bad_fde[bad_fde.size() / 2] ^= 1;
    testing::write_bytes(path + ".fde", bad_fde);
    EXPECT_EQ(MultiVectorIndex::open(path).error().code(), ErrorCode::kDataLoss);
    std::filesystem::remove(path + ".fde");
    EXPECT_EQ(MultiVectorIndex::open(path).error().code(), ErrorCode::kDataLoss);
    Data other;
    other.docs.resize(20);
    other.docs[0] = other.docs[1];
    auto ix2 = make(other, SearchMethod::kMuvera, "flat");
    ASSERT_TRUE(ix2->save(dir.file("y.mvix")).ok());
    std::filesystem::copy_file(dir.file("y.mvix.fde"), path + ".fde");
    auto o = MultiVectorIndex::open(path);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(o.error().message().find("not the one"), std::string::npos) << o.error().message();
}

}  // namespace
}  // namespace quiver::multivector
