// BERT-family outputs against PyTorch float64 references (tests/data/encode/reference.json, written by
// scripts/make_encoder_fixtures.py): dense (mean/CLS, normalised, f32/f16/bf16 weights, query prompt),
// SPLADE and ColBERT. Tolerance 1e-5 absolute.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <cstdio>
#include <string>

#include "encode/encode_testing.h"
#include "quiver/encode/encoder.h"
#include "quiver/text/wordpiece.h"
#include "testing/testing.h"

namespace quiver::encode {
namespace {

using quiver::testing::encode_fixture;
using quiver::testing::load_json;
using quiver::testing::to_floats;
using quiver::testing::to_strings;

constexpr float kTol = 1e-5f;

struct Fixture {
    json::Value ref = load_json(encode_fixture("reference.json"));
    std::vector<std::string> texts = to_strings(*ref.find("texts"));
    std::vector<std::string_view> views() const { return {texts.begin(), texts.end()}; }
};

std::unique_ptr<Encoder> load(const std::string& name, std::size_t threads = 2, std::size_t batch = 3,
                              std::size_t top_k = 0) {
    LoadOptions o;
    o.max_length = 32;
    o.threads = threads;
    o.batch = batch;
    o.sparse_top_k = top_k;
    auto enc = load_encoder(encode_fixture(name), o);
    EXPECT_TRUE(enc.ok()) << name << ": " << enc.error().message();
    return enc ? std::move(*enc) : nullptr;
}

float max_diff_dense(const Matrix<float>& got, const json::Value& want) {
    float worst = 0.0f;
    EXPECT_EQ(got.rows, want.as_array().size());
    for (std::size_t i = 0; i < got.rows; ++i) {
        const auto w = to_floats(want.as_array()[i]);
        EXPECT_EQ(w.size(), got.dim);
        for (std::size_t j = 0; j < w.size(); ++j) worst = std::max(worst, std::abs(got.row_ptr(i)[j] - w[j]));
    }
    return worst;
}

class DenseModels : public ::testing::TestWithParam<const char*> {};

TEST_P(DenseModels, MatchPyTorchReference) {
    Fixture f;
    auto enc = load(GetParam());
    ASSERT_NE(enc, nullptr);
    EXPECT_TRUE(enc->info().normalized);
    auto out = enc->encode(f.views(), {});
    ASSERT_TRUE(out.ok()) << out.error().message();
    const float diff = max_diff_dense(out->dense, *f.ref.find("dense")->find(GetParam()));
    RecordProperty("max_abs_diff", std::to_string(diff));
    std::printf("%s: max abs diff vs PyTorch %.3g\n", GetParam(), static_cast<double>(diff));
    EXPECT_LE(diff, kTol);
}

INSTANTIATE_TEST_SUITE_P(Encode, DenseModels,
                         ::testing::Values("bert-mean", "bert-mean-f16", "bert-mean-bf16", "bert-cls"));

TEST(BertEncoder, QueryPromptFromSentenceTransformersConfig) {
    Fixture f;
    auto enc = load("bert-cls");
    ASSERT_NE(enc, nullptr);
    EncodeOptions o;
    o.role = EncodeRole::kQuery;
    auto out = enc->encode(f.views(), o);
    ASSERT_TRUE(out.ok()) << out.error().message();
    EXPECT_LE(max_diff_dense(out->dense, *f.ref.find("query_dense")->find("bert-cls")), kTol);
}

TEST(BertEncoder, ThreadsAndBatchSizeDoNotChangeOutputs) {
    Fixture f;
    auto a = load("bert-mean", 1, 1);
    auto b = load("bert-mean", 2, 8);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    auto oa = a->encode(f.views(), {});
    auto ob = b->encode(f.views(), {});
    ASSERT_TRUE(oa.ok() && ob.ok());
    for (std::size_t i = 0; i < oa->dense.values.size(); ++i) {
        EXPECT_NEAR(oa->dense.values[i], ob->dense.values[i], 1e-5f);
    }
}

TEST(BertEncoder, SpladeMatchesReference) {
    Fixture f;
    auto enc = load("splade");
    ASSERT_NE(enc, nullptr);
    EncodeOptions o;
    o.kind = OutputKind::kSparse;
    auto out = enc->encode(f.views(), o);
    ASSERT_TRUE(out.ok()) << out.error().message();
    const auto& want = f.ref.find("splade")->as_array();
    ASSERT_EQ(out->sparse.size(), want.size());
    const std::size_t V = enc->info().sparse_dim;
    for (std::size_t i = 0; i < want.size(); ++i) {
        std::vector<float> dw(V, 0.0f);
        std::vector<float> dg(V, 0.0f);
        const auto ids = want[i].find("ids")->as_array();
        const auto ws = to_floats(*want[i].find("weights"));
        for (std::size_t j = 0; j < ids.size(); ++j) dw[static_cast<std::size_t>(ids[j].as_int())] = ws[j];
        const SparseVector& sv = out->sparse[i];
        ASSERT_TRUE(std::is_sorted(sv.ids.begin(), sv.ids.end()));
        for (std::size_t j = 0; j < sv.ids.size(); ++j) dg[sv.ids[j]] = sv.weights[j];
        for (std::size_t v = 0; v < V; ++v) EXPECT_NEAR(dg[v], dw[v], kTol) << "text " << i << " term " << v;
    }
    EXPECT_FALSE(enc->term(out->sparse[0].ids[0]).empty());
}

TEST(BertEncoder, SpladeTopKKeepsLargestWeights) {
    Fixture f;
    auto enc = load("splade", 2, 3, 5);
    ASSERT_NE(enc, nullptr);
    EncodeOptions o;
    o.kind = OutputKind::kSparse;
    auto out = enc->encode(f.views(), o);
    ASSERT_TRUE(out.ok());
    const auto& want = f.ref.find("splade")->as_array();
    for (std::size_t i = 0; i < want.size(); ++i) {
        auto ws = to_floats(*want[i].find("weights"));
        std::sort(ws.rbegin(), ws.rend());
        const SparseVector& sv = out->sparse[i];
        ASSERT_EQ(sv.ids.size(), std::min<std::size_t>(5, ws.size()));
        float smallest = *std::min_element(sv.weights.begin(), sv.weights.end());
        EXPECT_NEAR(smallest, ws[sv.ids.size() - 1], kTol);
    }
}

TEST(BertEncoder, ColbertMatchesReference) {
    Fixture f;
    auto enc = load("colbert");
    ASSERT_NE(enc, nullptr);
    EXPECT_EQ(enc->info().multivector_dim, 16u);
    for (const bool query : {false, true}) {
        EncodeOptions o;
        o.kind = OutputKind::kMultiVector;
        o.role = query ? EncodeRole::kQuery : EncodeRole::kDocument;
        auto out = enc->encode(f.views(), o);
        ASSERT_TRUE(out.ok()) << out.error().message();
        const auto& want = f.ref.find("colbert")->find(query ? "queries" : "documents")->as_array();
        ASSERT_EQ(out->multi.size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            const Matrix<float>& m = out->multi[i];
            ASSERT_EQ(m.rows, want[i].as_array().size()) << (query ? "query " : "doc ") << i;
            for (std::size_t r = 0; r < m.rows; ++r) {
                const auto w = to_floats(want[i].as_array()[r]);
                for (std::size_t c = 0; c < w.size(); ++c) EXPECT_NEAR(m.row_ptr(r)[c], w[c], kTol);
            }
        }
    }
}

TEST(BertEncoder, RejectsKindsTheModelLacks) {
    auto enc = load("bert-mean");
    ASSERT_NE(enc, nullptr);
    std::vector<std::string_view> texts{"hello"};
    EncodeOptions o;
    o.kind = OutputKind::kSparse;
    auto r = enc->encode(texts, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST(BertEncoder, EmptyInputAndLongText) {
    auto enc = load("bert-mean");
    ASSERT_NE(enc, nullptr);
    auto empty = enc->encode(std::span<const std::string_view>(), {});
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty->dense.rows, 0u);
    std::string long_text;
    for (int i = 0; i < 500; ++i) long_text += "retrieval ";
    std::vector<std::string_view> texts{long_text};
    auto out = enc->encode(texts, {});
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->dense.rows, 1u);
}

}  // namespace
}  // namespace quiver::encode

namespace quiver::encode {
namespace {

// Folders without tokenizer.json (vocab.txt + tokenizer_config.json) give the same outputs, and
// sentence_bert_config.json's max_seq_length caps the token count as sentence-transformers does.
TEST(BertEncoder, VocabTxtFolderAndMaxSeqLength) {
    quiver::testing::TempDir tmp;
    const std::string dir = tmp.file("m");
    quiver::testing::copy_folder(encode_fixture("bert-mean"), dir);
    auto tok = text::HfTokenizer::load(dir + "/tokenizer.json");
    ASSERT_TRUE(tok.ok());
    std::string vocab;
    for (std::size_t i = 0; i < tok->vocab_size(); ++i) {
        vocab += std::string(tok->id_to_token(static_cast<std::int32_t>(i))) + "\n";
    }
    std::filesystem::remove(dir + "/tokenizer.json");
    quiver::testing::write_bytes(dir + "/vocab.txt", vocab);
    quiver::testing::write_bytes(dir + "/tokenizer_config.json", R"({"do_lower_case": true})");
    Fixture f;
    LoadOptions o;
    o.max_length = 32;
    auto enc = load_encoder(dir, o);
    ASSERT_TRUE(enc.ok()) << enc.error().message();
    auto out = (*enc)->encode(f.views(), {});
    ASSERT_TRUE(out.ok());
    EXPECT_LE(max_diff_dense(out->dense, *f.ref.find("dense")->find("bert-mean")), kTol);

    quiver::testing::write_bytes(dir + "/sentence_bert_config.json", R"({"max_seq_length": 8})");
    auto capped = load_encoder(dir, o);
    ASSERT_TRUE(capped.ok());
    EXPECT_EQ((*capped)->info().max_length, 8u);
    auto co = (*capped)->encode(f.views(), {});
    ASSERT_TRUE(co.ok());
    EXPECT_LE(co->num_tokens, 8u * f.texts.size());
}

}  // namespace
}  // namespace quiver::encode
