// Static models: model2vec against the Python model2vec references shipped with the shared
// fixtures; word vectors on a tiny folder and on GloVe when present; the HashingEncoder.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "encode/encode_testing.h"
#include "quiver/encode/encoder.h"
#include "quiver/storage/vector_io.h"
#include "testing/testing.h"

namespace quiver::encode {
namespace {

using quiver::testing::load_json;
using quiver::testing::to_floats;

std::vector<float> encode_one(Encoder& enc, const std::string& text) {
    std::vector<std::string_view> texts{text};
    auto out = enc.encode(texts, {});
    EXPECT_TRUE(out.ok()) << out.error().message();
    if (!out) return {};
    return {out->dense.values.begin(), out->dense.values.end()};
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rel) {
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], rel * std::max(1.0f, std::abs(want[i]))) << "dim " << i;
    }
}

std::string long_hello() {
    std::string s;
    for (int i = 0; i < 1000; ++i) s += (i ? " hello" : "hello");
    return s;
}

TEST(Model2Vec, Float32MatchesPythonReferences) {
    QUIVER_REQUIRE_DATA(dir, "model2vec-test-fixtures");
    auto enc = load_encoder(dir + "/test-model-float32");
    ASSERT_TRUE(enc.ok()) << enc.error().message();
    EXPECT_EQ((*enc)->info().family, "model2vec");
    EXPECT_EQ((*enc)->info().dim, 2u);
    expect_close(encode_one(**enc, "hello world"), to_floats(load_json(dir + "/embeddings_short.json").as_array()[0]), 1e-5f);
    expect_close(encode_one(**enc, long_hello()), to_floats(load_json(dir + "/embeddings_long.json").as_array()[0]), 1e-5f);
}

TEST(Model2Vec, Float16IsCloseToFloat32Reference) {
    QUIVER_REQUIRE_DATA(dir, "model2vec-test-fixtures");
    auto enc = load_encoder(dir + "/test-model-float16");
    ASSERT_TRUE(enc.ok()) << enc.error().message();
    expect_close(encode_one(**enc, "hello world"), to_floats(load_json(dir + "/embeddings_short.json").as_array()[0]), 1e-3f);
}

TEST(Model2Vec, VocabQuantizedUnigramMatchesPythonReference) {
    QUIVER_REQUIRE_DATA(dir, "model2vec-test-fixtures");
    auto enc = load_encoder(dir + "/test-model-vocab-quantized");
    ASSERT_TRUE(enc.ok()) << enc.error().message();
    EXPECT_EQ((*enc)->info().dim, 64u);
    expect_close(encode_one(**enc, long_hello()),
                 to_floats(load_json(dir + "/embeddings_vocab_quantized.json").as_array()[0]), 1e-5f);
}

TEST(WordVectors, MeanAndSifOnATinyFolder) {
    quiver::testing::TempDir tmp;
    std::ofstream(tmp.file("vocab.txt")) << "the\ncat\nsat\n";
    Matrix<float> v(3, 2);
    v.values = {1, 0, 0, 1, 1, 1};
    ASSERT_TRUE(storage::write_fvecs(tmp.file("base.fvecs"), v).ok());
    auto enc = load_encoder(tmp.path());
    ASSERT_TRUE(enc.ok()) << enc.error().message();
    EXPECT_EQ((*enc)->info().family, "word-vectors");
    auto e = encode_one(**enc, "The CAT, unknownword!");
    ASSERT_EQ(e.size(), 2u);
    EXPECT_NEAR(e[0], std::sqrt(0.5f), 1e-6f);
    EXPECT_NEAR(e[1], std::sqrt(0.5f), 1e-6f);
    EXPECT_EQ(encode_one(**enc, "nothing known"), (std::vector<float>{0.0f, 0.0f}));
    LoadOptions o;
    o.sif = true;
    auto sif = load_encoder(tmp.path(), o);
    ASSERT_TRUE(sif.ok());
    auto s = encode_one(**sif, "the cat");
    EXPECT_LT(s[0], s[1]);  // "the" is the most frequent word, so it weighs least
}

TEST(WordVectors, MultiVectorIsOneUnitRowPerKnownWord) {
    quiver::testing::TempDir tmp;
    std::ofstream(tmp.file("vocab.txt")) << "the\ncat\nsat\nzero\n";
    Matrix<float> v(4, 2);
    v.values = {2, 0, 0, 3, 3, 4, 0, 0};
    ASSERT_TRUE(storage::write_fvecs(tmp.file("base.fvecs"), v).ok());
    auto enc = load_encoder(tmp.path());
    ASSERT_TRUE(enc.ok()) << enc.error().message();
    EXPECT_EQ((*enc)->info().multivector_dim, 2u);
    std::vector<std::string_view> texts{"Sat, the unknown CAT zero", "nothing known"};
    auto out = (*enc)->encode(texts, {.kind = OutputKind::kMultiVector});
    ASSERT_TRUE(out.ok()) << out.error().message();
    ASSERT_EQ(out->multi.size(), 2u);
    // Text order, unknown words dropped, rows normalised; a zero word vector has no direction and is dropped.
    EXPECT_EQ(out->multi[0].rows, 3u);
    EXPECT_EQ(out->multi[0].values, (std::vector<float>{0.6f, 0.8f, 1.0f, 0.0f, 0.0f, 1.0f}));
    EXPECT_EQ(out->multi[1].rows, 0u);
    EXPECT_EQ(out->num_tokens, 3u);
    EXPECT_EQ((*enc)->encode(texts, {.kind = OutputKind::kSparse}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(WordVectors, GloveFolderLoadsAsIs) {
    QUIVER_REQUIRE_DATA(dir, "glove-6b-100d");
    auto enc = load_encoder(dir);
    ASSERT_TRUE(enc.ok()) << enc.error().message();
    EXPECT_EQ((*enc)->info().dim, 100u);
    auto a = encode_one(**enc, "protein folding in cells");
    auto b = encode_one(**enc, "cell proteins fold");
    auto c = encode_one(**enc, "football match tonight");
    auto dot = [](const std::vector<float>& x, const std::vector<float>& y) {
        float s = 0;
        for (std::size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
        return s;
    };
    EXPECT_GT(dot(a, b), dot(a, c));
}

TEST(HashingEncoder, DeterministicNormalisedAndCaseInsensitive) {
    HashingEncoder enc(64, 7);
    auto a = encode_one(enc, "Hello world");
    auto b = encode_one(enc, "hello WORLD");
    EXPECT_EQ(a, b);
    float n = 0;
    for (float x : a) n += x * x;
    EXPECT_NEAR(n, 1.0f, 1e-5f);
    HashingEncoder other(64, 8);
    EXPECT_NE(encode_one(other, "Hello world"), a);
    std::vector<std::string_view> texts{"a b a"};
    EncodeOptions o;
    o.kind = OutputKind::kSparse;
    auto sp = enc.encode(texts, o);
    ASSERT_TRUE(sp.ok());
    float total = 0;
    for (float w : sp->sparse[0].weights) total += w;
    EXPECT_EQ(total, 3.0f);
    std::vector<std::string_view> bad{"\xff"};
    EXPECT_FALSE(enc.encode(bad, {}).ok());
}

}  // namespace
}  // namespace quiver::encode
