// Blocked FDEs (fde_blocks.h): scores equal to an independent integer reference built from the float
// FDEs, and within the int8 rounding bound of the FDE inner products; only the query's non-zero blocks
// scanned, the candidate order, the index built on them (every candidate = exact, recall floor), the
// version-3 index file, reading version 2 (coordinate-major), and damage.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "mv_data.h"
#include "quiver/multivector/fde_blocks.h"
#include "quiver/multivector/multivector_index.h"
#include "quiver/storage/file_format.h"
#include "testing/testing.h"

namespace quiver::multivector {
namespace {

using testing::TempDir;

struct Data {
    Matrix<float> vocab = testdata::vocabulary(1500, 32, 30, 21);
    std::vector<Matrix<float>> docs = testdata::sets(vocab, 30, 2000, 3, 30, 22);
    std::vector<Matrix<float>> queries = testdata::sets(vocab, 30, 40, 2, 10, 23);
};

constexpr MuveraParams kParams{.k_sim = 4, .d_proj = 8, .r_reps = 6, .seed = 5};

TEST(FdeBlocks, ScoresAreFdeInnerProductsWithinTheInt8Bound) {
    Data d;
    d.docs.resize(600);
    const TokenStore store = testdata::store(d.docs, 32, TokenCodec::kFloat32);
    auto mv = Muvera::create(32, kParams);
    ASSERT_TRUE(mv.ok());
    auto blocks = FdeBlocks::build(*mv, store, 2);
    ASSERT_TRUE(blocks.ok()) << blocks.error().message();
    ASSERT_EQ(blocks->size(), 600u);
    ASSERT_EQ(blocks->dim(), mv->fde_dim());
    EXPECT_EQ(blocks->bytes(), mv->fde_dim() * 600 + mv->fde_dim() * sizeof(float));
    // Document FDEs in float, for the reference.
    std::vector<std::vector<float>> fdes(600, std::vector<float>(mv->fde_dim()));
    std::vector<float> amax(mv->fde_dim(), 0.0f);
    for (std::size_t i = 0; i < 600; ++i) {
        mv->encode_document(d.docs[i].view(), fdes[i].data());
        for (std::size_t j = 0; j < fdes[i].size(); ++j) amax[j] = std::max(amax[j], std::abs(fdes[i][j]));
    }
    std::vector<float> fq(mv->fde_dim()), scores;
    for (const auto& q : d.queries) {
        mv->encode_query(q.view(), fq.data());
        std::size_t nonzero = 0;
        for (std::size_t b = 0; b < mv->fde_dim() / 8; ++b) {
            bool any = false;
            for (std::size_t j = 0; j < 8; ++j) any = any || fq[b * 8 + j] != 0.0f;
            nonzero += any;
        }
        EXPECT_LE(nonzero, q.rows * kParams.r_reps);
        EXPECT_EQ(blocks->score_all(fq.data(), scores), nonzero);
        ASSERT_EQ(scores.size(), 600u);
        // The reference, as the file comment specifies it: document codes round(F / s) with
        // s = max |F| / 127, query codes round(fq * s / alpha) with alpha = max |fq * s| / 127, the
        // integer sum exact, times alpha (one tile of 600 documents: one float product each).
        std::vector<float> s(fq.size());
        float qmax = 0.0f;
        for (std::size_t j = 0; j < fq.size(); ++j) {
            s[j] = amax[j] / 127.0f;
            qmax = std::max(qmax, std::abs(fq[j] * s[j]));
        }
        ASSERT_GT(qmax, 0.0f);
        const float alpha = qmax / 127.0f;
        std::vector<std::int64_t> qc(fq.size());
        for (std::size_t j = 0; j < fq.size(); ++j) qc[j] = std::llround(std::nearbyint(fq[j] * s[j] / alpha));
        for (std::size_t i = 0; i < 600; ++i) {
            std::int64_t sum = 0;
            double exact = 0, mag = 0, codes_l1 = 0, bound = 0;
            for (std::size_t j = 0; j < fq.size(); ++j) {
                const std::int64_t c = s[j] > 0.0f ? std::llround(std::nearbyint(fdes[i][j] / s[j])) : 0;
                ASSERT_LE(std::abs(c), 127);
                sum += qc[j] * c;
                exact += double(fq[j]) * fdes[i][j];
                mag += std::abs(double(fq[j]) * fdes[i][j]);
                if (fq[j] != 0.0f) codes_l1 += static_cast<double>(std::abs(c));
                bound += std::abs(fq[j]) * double(s[j]) / 2;
            }
            ASSERT_EQ(scores[i], alpha * static_cast<float>(sum)) << "doc " << i;
            // |got - exact| <= sum_i |fq_i| s_i / 2 + alpha / 2 * sum_i |code_i|, plus float slack.
            bound += double(alpha) / 2 * codes_l1;
            ASSERT_LE(std::abs(scores[i] - exact), bound + 1e-5 * (1 + mag)) << "doc " << i;
        }
        // top(c) is the c best of those scores, score descending then document ascending.
        std::vector<float> again;
        const auto top = blocks->top(fq.data(), 50, again);
        ASSERT_EQ(top.size(), 50u);
        std::vector<std::uint32_t> all(600);
        for (std::uint32_t i = 0; i < 600; ++i) all[i] = i;
        std::sort(all.begin(), all.end(), [&](std::uint32_t a, std::uint32_t b) {
            return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
        });
        EXPECT_TRUE(std::equal(top.begin(), top.end(), all.begin()));
        EXPECT_EQ(blocks->top(fq.data(), 5000, again).size(), 600u);
    }
    // d_final mixes blocks: refused.
    auto sketched = Muvera::create(32, {.k_sim = 4, .d_proj = 8, .r_reps = 6, .d_final = 256, .seed = 5});
    ASSERT_TRUE(sketched.ok());
    EXPECT_EQ(FdeBlocks::build(*sketched, store, 1).error().code(), ErrorCode::kInvalidArgument);
}

std::unique_ptr<MultiVectorIndex> make_blocks(const Data& d, TokenCodec codec) {
    MultiVectorBuildParams p;
    p.method = SearchMethod::kMuvera;
    p.fde_index = "blocks";
    p.muvera = {.k_sim = 4, .d_proj = 16, .r_reps = 8, .seed = 5};
    p.hnsw.threads = 2;
    auto ix = MultiVectorIndex::build(testdata::store(d.docs, 32, codec), {}, p);
    EXPECT_TRUE(ix.ok()) << ix.error().message();
    return std::move(*ix);
}

// best(): score descending, document ascending on ties, -infinity entries left out (how a collection
// segment excludes deleted and filtered-out documents), at most c.
TEST(FdeBlocks, BestOrdersTiesAndLeavesOutExcluded) {
    const float x = -std::numeric_limits<float>::infinity();
    const std::vector<float> scores = {0.5f, x, 2.0f, 0.5f, -1.0f, x, 2.0f, 0.0f};
    EXPECT_EQ(FdeBlocks::best(scores, 3), (std::vector<std::uint32_t>{2, 6, 0}));
    EXPECT_EQ(FdeBlocks::best(scores, 4), (std::vector<std::uint32_t>{2, 6, 0, 3}));
    EXPECT_EQ(FdeBlocks::best(scores, 100), (std::vector<std::uint32_t>{2, 6, 0, 3, 7, 4}));
    EXPECT_TRUE(FdeBlocks::best(scores, 0).empty());
    EXPECT_TRUE(FdeBlocks::best(std::vector<float>(5, x), 3).empty());
    EXPECT_TRUE(FdeBlocks::best({}, 3).empty());
    // Against a full sort, with many ties (scores from 7 values) and excluded entries, every depth.
    std::mt19937 rng(4);
    std::uniform_int_distribution<int> v(-1, 5);
    std::vector<float> many(500);
    for (float& f : many) f = v(rng) < 0 ? x : static_cast<float>(v(rng)) * 0.25f;
    std::vector<std::uint32_t> order;
    for (std::uint32_t d = 0; d < many.size(); ++d) {
        if (many[d] != x) order.push_back(d);
    }
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        return many[a] > many[b] || (many[a] == many[b] && a < b);
    });
    for (std::size_t c = 0; c <= many.size(); ++c) {
        const auto got = FdeBlocks::best(many, c);
        ASSERT_EQ(got.size(), std::min(c, order.size())) << c;
        ASSERT_TRUE(std::equal(got.begin(), got.end(), order.begin())) << c;
    }
}

TEST(FdeBlocks, IndexEveryCandidateIsExactAndFewCandidatesReachHighRecall) {
    Data d;
    for (TokenCodec codec : {TokenCodec::kFloat32, TokenCodec::kInt8}) {
        auto ix = make_blocks(d, codec);
        EXPECT_EQ(ix->fde_kind(), "blocks");
        EXPECT_EQ(ix->fde_index(), nullptr);
        ASSERT_NE(ix->fde_blocks(), nullptr);
        const TokenStore same = testdata::store(d.docs, 32, codec);
        const TokenStore f32 = testdata::store(d.docs, 32, TokenCodec::kFloat32);
        MaxSimScratch scratch;
        double hit = 0, total = 0;
        for (const auto& q : d.queries) {
            const auto truth = exact_search(same, q.view(), 10, scratch);
            const auto all = ix->search(q.view(), {.k = 10, .candidates = 2000});
            ASSERT_TRUE(all.ok());
            ASSERT_EQ(all->size(), truth.size());
            for (std::size_t j = 0; j < truth.size(); ++j) {
                EXPECT_EQ((*all)[j].doc, truth[j].doc);
                EXPECT_EQ((*all)[j].score, truth[j].score);
            }
            const auto float_truth = exact_search(f32, q.view(), 10, scratch);
            const auto got = ix->search(q.view(), {.k = 10, .candidates = 100});
            ASSERT_TRUE(got.ok());
            for (const Hit& g : *got) {
                for (const Hit& t : float_truth) hit += g.doc == t.doc;
            }
            total += static_cast<double>(float_truth.size());
        }
        // 5% of the collection re-ranked; the flat float FDE index reaches 0.85+ here (multivector_index_test).
        std::printf("blocked FDEs, %s tokens: recall@10 against float32 exact with 100 candidates %.4f\n",
                    std::string(to_string(codec)).c_str(), hit / total);
        EXPECT_GE(hit / total, 0.83);
    }
}

TEST(FdeBlocks, SavedAsVersionThreeAndDamageIsDataLoss) {
    Data d;
    d.docs.resize(60);
    TempDir dir;
    const std::string path = dir.file("b.mvix");
    auto ix = make_blocks(d, TokenCodec::kInt8);
    ASSERT_TRUE(ix->save(path).ok());
    EXPECT_FALSE(std::filesystem::exists(path + ".fde"));
    const std::string good = testing::read_bytes(path);
    std::uint32_t version = 0;
    std::memcpy(&version, good.data() + 8, 4);
    EXPECT_EQ(version, 3u);
    for (bool in_memory : {false, true}) {
        auto o = MultiVectorIndex::open(path, {.in_memory = in_memory});
        ASSERT_TRUE(o.ok()) << o.error().message();
        EXPECT_EQ((*o)->fde_kind(), "blocks");
        EXPECT_EQ((*o)->fde_bytes(), ix->fde_bytes());
        for (std::size_t qi = 0; qi < 8; ++qi) {
            auto a = ix->search(d.queries[qi].view(), {.k = 10, .candidates = 40});
            auto b = (*o)->search(d.queries[qi].view(), {.k = 10, .candidates = 40});
            ASSERT_EQ(a->size(), b->size());
            for (std::size_t j = 0; j < a->size(); ++j) {
                EXPECT_EQ((*a)[j].doc, (*b)[j].doc);
                EXPECT_EQ((*a)[j].score, (*b)[j].score);
            }
        }
    }
    // A float32 HNSW MUVERA index still saves as version 1.
    {
        MultiVectorBuildParams p;
        p.muvera = kParams;
        p.hnsw.threads = 1;
        auto h = MultiVectorIndex::build(testdata::store(d.docs, 32, TokenCodec::kFloat32), {}, p);
        ASSERT_TRUE(h.ok());
        ASSERT_TRUE((*h)->save(dir.file("h.mvix")).ok());
        const std::string hb = testing::read_bytes(dir.file("h.mvix"));
        std::memcpy(&version, hb.data() + 8, 4);
        EXPECT_EQ(version, 1u);
    }
    // Every byte of the header and parameters, then a sample of the token and block sections.
    for (std::size_t i = 0; i < good.size(); i += (i < 1024 ? 1 : 331)) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x21);
        testing::write_bytes(path, bad);
        auto o = MultiVectorIndex::open(path);
        ASSERT_FALSE(o.ok()) << "byte " << i;
        EXPECT_TRUE(o.error().code() == ErrorCode::kDataLoss || o.error().code() == ErrorCode::kFailedPrecondition)
            << "byte " << i << ": " << o.error().message();
    }
    for (std::size_t len : {good.size() / 2, good.size() - 1}) {
        testing::write_bytes(path, good.substr(0, len));
        EXPECT_EQ(MultiVectorIndex::open(path).error().code(), ErrorCode::kDataLoss) << len;
    }
}

// Version 2 files (the same sections, codes coordinate-major: codes[i * n + d]) are still read: the
// codes are re-laid out in memory, and searches answer exactly as the version-3 file does.
TEST(FdeBlocks, ReadsVersionTwoCoordinateMajorCodes) {
    Data d;
    d.docs.resize(60);
    TempDir dir;
    auto ix = make_blocks(d, TokenCodec::kFloat32);
    const std::string path3 = dir.file("v3.mvix"), path2 = dir.file("v2.mvix");
    ASSERT_TRUE(ix->save(path3).ok());
    const std::string v3 = testing::read_bytes(path3);
    // The codes are the file's last section (width 16: no padding, dim x n bytes either way).
    const std::size_t n = 60, dim = ix->muvera()->fde_dim();
    ASSERT_EQ(ix->fde_blocks()->groups(), 4u);
    const std::size_t end = v3.size() - storage::kFooterBytes, begin = end - dim * n;
    std::uint64_t count = 0;
    std::memcpy(&count, v3.data() + begin - 64, 8);  // u64 count, then padding to 64
    ASSERT_EQ(count, dim * n);
    std::string v2 = v3;
    for (std::size_t g = 0; g < dim / 4; ++g) {
        for (std::size_t doc = 0; doc < n; ++doc) {
            for (std::size_t t = 0; t < 4; ++t) v2[begin + (4 * g + t) * n + doc] = v3[begin + (g * n + doc) * 4 + t];
        }
    }
    const std::uint32_t two = 2;
    std::memcpy(v2.data() + 8, &two, 4);
    std::memcpy(v2.data() + v2.size() - 8, &two, 4);
    const std::uint32_t crc = storage::crc32(0, v2.data(), end);
    std::memcpy(v2.data() + end + 8, &crc, 4);
    testing::write_bytes(path2, v2);
    for (bool in_memory : {false, true}) {
        auto o = MultiVectorIndex::open(path2, {.in_memory = in_memory});
        ASSERT_TRUE(o.ok()) << o.error().message();
        EXPECT_EQ((*o)->fde_bytes(), ix->fde_bytes());
        for (std::size_t qi = 0; qi < d.queries.size(); ++qi) {
            std::vector<float> fq(dim), a, b;
            ix->muvera()->encode_query(d.queries[qi].view(), fq.data());
            ix->fde_blocks()->score_all(fq.data(), a);
            (*o)->fde_blocks()->score_all(fq.data(), b);
            ASSERT_EQ(a, b) << "query " << qi;
            auto x = ix->search(d.queries[qi].view(), {.k = 10, .candidates = 20});
            auto y = (*o)->search(d.queries[qi].view(), {.k = 10, .candidates = 20});
            ASSERT_EQ(x->size(), y->size());
            for (std::size_t j = 0; j < x->size(); ++j) EXPECT_EQ((*x)[j].doc, (*y)[j].doc);
        }
    }
    // A version-2 codes section one byte short (CRC recomputed) is refused.
    std::string shorter = v2;
    const std::uint64_t wrong = dim * n - 1;
    std::memcpy(shorter.data() + begin - 64, &wrong, 8);
    const std::uint32_t crc2 = storage::crc32(0, shorter.data(), end);
    std::memcpy(shorter.data() + end + 8, &crc2, 4);
    testing::write_bytes(path2, shorter);
    EXPECT_EQ(MultiVectorIndex::open(path2).error().code(), ErrorCode::kDataLoss);
}

}  // namespace
}  // namespace quiver::multivector
