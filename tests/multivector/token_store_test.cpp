// Token store: exact float rows, int8 error bound, files (mapped and in memory), corruption, JSONL.
#include <gtest/gtest.h>

#include <cmath>

#include "mv_data.h"
#include "quiver/multivector/token_store.h"
#include "quiver/storage/file_format.h"
#include "testing/testing.h"

namespace quiver::multivector {
namespace {

using testing::TempDir;

std::vector<Matrix<float>> small_docs() {
    auto vocab = testdata::vocabulary(200, 24, 8, 7);
    auto docs = testdata::sets(vocab, 8, 50, 0, 12, 9);  // some documents have no tokens
    return docs;
}

TEST(TokenStore, Float32KeepsRowsExactly) {
    auto docs = small_docs();
    TokenStore s = testdata::store(docs, 24, TokenCodec::kFloat32);
    ASSERT_EQ(s.size(), docs.size());
    std::size_t total = 0;
    for (std::size_t d = 0; d < docs.size(); ++d) {
        ASSERT_EQ(s.tokens(d), docs[d].rows);
        total += docs[d].rows;
        for (std::size_t i = 0; i < docs[d].values.size(); ++i) ASSERT_EQ(s.float_rows(d)[i], docs[d].values[i]);
    }
    EXPECT_EQ(s.total_tokens(), total);
    EXPECT_EQ(s.bytes(), (docs.size() + 1) * 8 + total * 24 * 4);
}

TEST(TokenStore, Int8ErrorIsAtMostHalfAStep) {
    auto docs = small_docs();
    TokenStore s = testdata::store(docs, 24, TokenCodec::kInt8);
    std::size_t total = 0;
    for (std::size_t d = 0; d < docs.size(); ++d) {
        std::vector<float> out(s.tokens(d) * 24);
        s.decode(d, out.data());
        for (std::size_t r = 0; r < docs[d].rows; ++r) {
            float amax = 0;
            for (std::size_t j = 0; j < 24; ++j) amax = std::max(amax, std::abs(docs[d].row_ptr(r)[j]));
            const float step = amax / 127.0f;
            for (std::size_t j = 0; j < 24; ++j) {
                ASSERT_LE(std::abs(out[r * 24 + j] - docs[d].row_ptr(r)[j]), step * 0.5f + 1e-7f);
            }
        }
        total += docs[d].rows;
    }
    EXPECT_EQ(s.bytes(), (docs.size() + 1) * 8 + total * (24 + 4));
}

TEST(TokenStore, BuilderRejectsBadRows) {
    TokenStoreBuilder b(4, TokenCodec::kFloat32);
    Matrix<float> wrong(2, 3);
    EXPECT_EQ(b.add(wrong.view()).error().code(), ErrorCode::kInvalidArgument);
    Matrix<float> nan(1, 4);
    nan.values[2] = std::nanf("");
    EXPECT_EQ(b.add(nan.view()).error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(b.size(), 0u);
    Matrix<float> ok(1, 4);
    EXPECT_TRUE(b.add(ok.view()).ok());
    EXPECT_EQ(b.size(), 1u);
}

TEST(TokenStore, FilesRoundTripMappedAndInMemory) {
    TempDir dir;
    auto docs = small_docs();
    for (TokenCodec codec : {TokenCodec::kFloat32, TokenCodec::kInt8}) {
        TokenStore s = testdata::store(docs, 24, codec);
        const std::string path = dir.file(std::string(to_string(codec)) + ".mvts");
        ASSERT_TRUE(s.save(path).ok());
        for (bool in_memory : {false, true}) {
            auto o = TokenStore::open(path, {.in_memory = in_memory});
            ASSERT_TRUE(o.ok()) << o.error().message();
            ASSERT_EQ(o->size(), s.size());
            ASSERT_EQ(o->codec(), codec);
            ASSERT_EQ(o->total_tokens(), s.total_tokens());
            std::vector<float> a(s.total_tokens() * 24), b(s.total_tokens() * 24);
            s.decode_rows(0, s.total_tokens(), a.data());
            o->decode_rows(0, o->total_tokens(), b.data());
            EXPECT_EQ(a, b);
        }
    }
}

TEST(TokenStore, EveryDamagedByteIsDataLoss) {
    TempDir dir;
    auto docs = testdata::sets(testdata::vocabulary(50, 8, 4, 1), 4, 6, 1, 4, 2);
    for (TokenCodec codec : {TokenCodec::kFloat32, TokenCodec::kInt8}) {
        const std::string path = dir.file("s.mvts");
        ASSERT_TRUE(testdata::store(docs, 8, codec).save(path).ok());
        const std::string good = testing::read_bytes(path);
        for (std::size_t i = 0; i < good.size(); ++i) {
            std::string bad = good;
            bad[i] = static_cast<char>(bad[i] ^ 0x5a);
            testing::write_bytes(path, bad);
            auto o = TokenStore::open(path);
            ASSERT_FALSE(o.ok()) << "byte " << i;
            // A flipped version byte may read as a newer format (kFailedPrecondition); all else is kDataLoss.
            EXPECT_TRUE(o.error().code() == ErrorCode::kDataLoss || o.error().code() == ErrorCode::kFailedPrecondition)
                << "byte " << i << ": " << o.error().message();
        }
        for (std::size_t len : {std::size_t{0}, std::size_t{10}, good.size() / 2, good.size() - 1}) {
            testing::write_bytes(path, good.substr(0, len));
            auto o = TokenStore::open(path);
            ASSERT_FALSE(o.ok());
            EXPECT_EQ(o.error().code(), ErrorCode::kDataLoss) << len;
        }
    }
}

TEST(TokenStore, JsonlReaderParsesAndNamesBadLines) {
    TempDir dir;
    const std::string p = dir.file("d.jsonl");
    testing::write_bytes(p, "{\"id\": \"a\", \"vectors\": [[1, 2], [3, 4.5]]}\n\n{\"id\": 7, \"vectors\": []}\n");
    auto s = read_multivector_jsonl(p);
    ASSERT_TRUE(s.ok()) << s.error().message();
    ASSERT_EQ(s->ids, (std::vector<std::string>{"a", "7"}));
    EXPECT_EQ(s->dim, 2u);
    EXPECT_EQ(s->docs[0].values, (std::vector<float>{1, 2, 3, 4.5f}));
    EXPECT_EQ(s->docs[1].rows, 0u);
    struct Bad {
        const char* text;
        const char* needle;
    };
    for (const Bad& b : {Bad{"{\"id\": \"a\", \"vectors\": [[1, 2]]}\n{\"id\": \"a\", \"vectors\": [[1, 2]]}\n", "line 2: duplicate id"},
                         Bad{"{\"id\": \"a\", \"vectors\": [[1, 2]]}\n{\"id\": \"b\", \"vectors\": [[1, 2, 3]]}\n", "line 2: token vectors of dimension 3"},
                         Bad{"{\"id\": \"a\", \"vectors\": [[1, \"x\"]]}\n", "line 1: token 0 value 1"},
                         Bad{"{\"id\": \"a\", \"vectors\": [[1, 2], [1]]}\n", "line 1: token 1 is not an array of 2"},
                         Bad{"{\"id\": \"a\"}\n", "line 1: expected"},
                         Bad{"{\"id\": \"a\", \"vectors\": [[1, 2]]\n", "line 1"},
                         Bad{"{\"id\": \"a\", \"vectors\": []}\n", "zero token vectors"}}) {
        testing::write_bytes(p, b.text);
        auto r = read_multivector_jsonl(p);
        ASSERT_FALSE(r.ok()) << b.text;
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(r.error().message().find(b.needle), std::string::npos) << r.error().message();
    }
    EXPECT_EQ(read_multivector_jsonl(dir.file("missing.jsonl")).error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace quiver::multivector
