// Decoder-only embedders (Qwen2 layout: q/k/v biases, GQA 2:1, last-token pooling, normalised,
// instruction prompt for queries; Mistral layout: `model.` prefix, no biases, GQA 4:1, head_dim !=
// hidden/heads, mean pooling; Qwen3 layout: q_norm/k_norm, YaRN RoPE; the rope_scaling types linear,
// dynamic NTK, llama3 and yarn on the Mistral weights) and XLM-RoBERTa (positions from pad_token_id + 1, one token type), all
// against float64 PyTorch references written by scripts/make_encoder_fixtures.py decoders, within 1e-5.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "encode/encode_testing.h"
#include "quiver/encode/encoder.h"
#include "quiver/storage/file_format.h"
#include "testing/testing.h"

namespace quiver::encode {
namespace {

using quiver::testing::copy_folder;
using quiver::testing::encode_fixture;
using quiver::testing::load_json;
using quiver::testing::TempDir;
using quiver::testing::to_floats;
using quiver::testing::to_strings;

constexpr double kTol = 1e-5;

struct Ref {
    json::Value ref = load_json(encode_fixture("decoder_reference.json"));
    std::vector<std::string> texts = to_strings(*ref.find("texts"));
    std::vector<std::string_view> views() const { return {texts.begin(), texts.end()}; }
};

std::unique_ptr<Encoder> load(const std::string& dir, std::size_t threads, std::size_t batch, bool int8 = false) {
    LoadOptions o;
    o.max_length = 32;
    o.threads = threads;
    o.batch = batch;
    o.int8 = int8;
    auto enc = load_encoder(dir, o);
    EXPECT_TRUE(enc.ok()) << dir << ": " << enc.error().message();
    return enc ? std::move(*enc) : nullptr;
}

double max_diff(const Matrix<float>& got, const json::Value& want) {
    double worst = 0.0;
    EXPECT_EQ(got.rows, want.as_array().size());
    for (std::size_t i = 0; i < got.rows && i < want.as_array().size(); ++i) {
        const auto w = to_floats(want.as_array()[i]);
        EXPECT_EQ(w.size(), got.dim);
        for (std::size_t j = 0; j < w.size() && j < got.dim; ++j) worst = std::max(worst, std::abs(double(got.row_ptr(i)[j]) - w[j]));
    }
    return worst;
}

class Decoders : public ::testing::TestWithParam<const char*> {};

TEST_P(Decoders, MatchPyTorchOnDocumentsAndQueries) {
    Ref f;
    const json::Value& want = *f.ref.find("decoders")->find(GetParam());
    // Threads and batch sizes: one batch on a team of 2, several batches on 2 workers, one thread.
    for (const auto& [threads, batch] : {std::pair<std::size_t, std::size_t>{2, 16}, {2, 3}, {1, 5}}) {
        auto enc = load(encode_fixture(GetParam()), threads, batch);
        ASSERT_NE(enc, nullptr);
        EXPECT_EQ(enc->info().dim, 32u);
        for (const bool query : {false, true}) {
            EncodeOptions eo;
            eo.role = query ? EncodeRole::kQuery : EncodeRole::kDocument;
            auto out = enc->encode(f.views(), eo);
            ASSERT_TRUE(out.ok()) << out.error().message();
            const double d = max_diff(out->dense, *want.find(query ? "queries" : "documents"));
            std::printf("%s %s (threads %zu, batch %zu): max abs diff vs PyTorch %.3g\n", GetParam(),
                        query ? "queries" : "documents", threads, batch, d);
            EXPECT_LE(d, kTol);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Encode, Decoders, ::testing::Values("qwen2-tiny", "mistral-tiny", "qwen3-tiny"));

TEST(Decoders, InfoAndPromptMatter) {
    Ref f;
    auto q = load(encode_fixture("qwen2-tiny"), 1, 8);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->info().family, "qwen2");
    EXPECT_TRUE(q->info().normalized);
    auto m = load(encode_fixture("mistral-tiny"), 1, 8);
    ASSERT_NE(m, nullptr);
    EXPECT_FALSE(m->info().normalized);
    EXPECT_EQ(m->info().metric, simd::Metric::kInnerProduct);
    // The Qwen2 fixture's query prompt changes the vectors; an override to "" makes queries equal documents.
    LoadOptions o;
    o.max_length = 32;
    o.threads = 1;
    o.query_prefix = "";
    auto plain = load_encoder(encode_fixture("qwen2-tiny"), o);
    ASSERT_TRUE(plain.ok());
    EncodeOptions qo;
    qo.role = EncodeRole::kQuery;
    auto a = (*plain)->encode(f.views(), qo);
    auto b = (*plain)->encode(f.views(), {});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->dense.values, b->dense.values);
    auto c = q->encode(f.views(), qo);
    ASSERT_TRUE(c.ok());
    EXPECT_GT(max_diff(c->dense, *f.ref.find("decoders")->find("qwen2-tiny")->find("documents")), 1e-3);
    EncodeOptions sparse;
    sparse.kind = OutputKind::kSparse;
    EXPECT_FALSE(q->encode(f.views(), sparse).ok());
}

TEST(Decoders, BadConfigsAreNamedErrors) {
    TempDir tmp;
    auto with_config = [&](const std::string& from, const std::string& to) {
        const std::string dir = tmp.file("m");
        std::filesystem::remove_all(dir);
        copy_folder(encode_fixture("qwen2-tiny"), dir);
        std::string cfg = *storage::read_file(dir + "/config.json");
        const auto pos = cfg.find(from);
        EXPECT_NE(pos, std::string::npos) << from;
        cfg.replace(pos, from.size(), to);
        std::ofstream(dir + "/config.json") << cfg;
        auto r = load_encoder(dir);
        EXPECT_FALSE(r.ok()) << to;
        return r ? std::string() : r.error().message();
    };
    EXPECT_NE(with_config("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3").find("num_key_value_heads"),
              std::string::npos);
    EXPECT_NE(with_config("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3").find("layers.2"), std::string::npos);
    EXPECT_NE(with_config("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"").find("hidden_act"), std::string::npos);
    EXPECT_NE(with_config("\"hidden_size\": 32", "\"hidden_size\": 64").find("embed_tokens"), std::string::npos);
}

// A copy of `fixture` in tmp whose config.json has `rope_scaling` (JSON text) inserted and
// max_position_embeddings `from` replaced by `to`.
std::string with_rope(const TempDir& tmp, const char* fixture, const std::string& rope_scaling, const std::string& from = "",
                      const std::string& to = "") {
    const std::string dir = tmp.file("rope");
    std::filesystem::remove_all(dir);
    copy_folder(encode_fixture(fixture), dir);
    std::string cfg = *storage::read_file(dir + "/config.json");
    if (!from.empty()) {
        const auto pos = cfg.find(from);
        EXPECT_NE(pos, std::string::npos) << from;
        if (pos != std::string::npos) cfg.replace(pos, from.size(), to);
    }
    if (!rope_scaling.empty()) cfg.insert(cfg.find('{') + 1, "\"rope_scaling\": " + rope_scaling + ",");
    std::ofstream(dir + "/config.json") << cfg;
    return dir;
}

TEST(Decoders, RopeScalingTypesMatchPyTorch) {
    Ref f;
    TempDir tmp;
    const json::Value& variants = *f.ref.find("rope_scaling");
    const json::Value& plain = *f.ref.find("decoders")->find("mistral-tiny")->find("documents");
    ASSERT_EQ(variants.as_object().size(), 4u);
    for (const auto& [name, v] : variants.as_object()) {
        const std::string max_pos = std::to_string(v.find("max_position_embeddings")->as_int());
        const std::string dir = with_rope(tmp, "mistral-tiny", v.find("rope_scaling")->as_string(),
                                          "\"max_position_embeddings\": 64", "\"max_position_embeddings\": " + max_pos);
        for (const auto& [threads, batch] : {std::pair<std::size_t, std::size_t>{2, 16}, {1, 3}}) {
            auto enc = load(dir, threads, batch);
            ASSERT_NE(enc, nullptr) << name;
            // Dynamic NTK takes sequences past max_position_embeddings (16 here); the others stop there.
            EXPECT_EQ(enc->info().max_length, 32u) << name;
            auto out = enc->encode(f.views(), {});
            ASSERT_TRUE(out.ok()) << out.error().message();
            const double d = max_diff(out->dense, *v.find("documents"));
            std::printf("mistral-tiny rope_scaling %s (threads %zu, batch %zu): max abs diff vs PyTorch %.3g\n",
                        name.c_str(), threads, batch, d);
            EXPECT_LE(d, kTol) << name;
            EXPECT_GT(max_diff(out->dense, plain), 1e-4) << name << ": the scaling must change the output";
        }
    }
    // Without dynamic scaling max_position_embeddings 16 caps the length.
    auto capped = load(with_rope(tmp, "mistral-tiny", "", "\"max_position_embeddings\": 64", "\"max_position_embeddings\": 16"), 1, 4);
    ASSERT_NE(capped, nullptr);
    EXPECT_EQ(capped->info().max_length, 16u);
    // "default" (and a null rope_scaling) is plain RoPE.
    for (const char* rs : {"{\"rope_type\": \"default\"}", "null"}) {
        auto enc = load(with_rope(tmp, "mistral-tiny", rs), 1, 4);
        ASSERT_NE(enc, nullptr);
        auto out = enc->encode(f.views(), {});
        ASSERT_TRUE(out.ok());
        EXPECT_LE(max_diff(out->dense, plain), kTol) << rs;
    }
}

TEST(Decoders, Qwen3NeedsItsNormsAndRopeErrorsAreNamed) {
    TempDir tmp;
    auto error = [&](const std::string& dir) {
        auto r = load_encoder(dir);
        EXPECT_FALSE(r.ok()) << dir;
        return r ? std::string() : r.error().message();
    };
    // A Qwen2 checkpoint declared as qwen3 has no q_norm.
    EXPECT_NE(error(with_rope(tmp, "qwen2-tiny", "", "\"model_type\": \"qwen2\"", "\"model_type\": \"qwen3\"")).find("q_norm"),
              std::string::npos);
    auto rope_error = [&](const std::string& rs) { return error(with_rope(tmp, "mistral-tiny", rs)); };
    EXPECT_NE(rope_error("{\"rope_type\": \"longrope\", \"factor\": 2}").find("longrope"), std::string::npos);
    EXPECT_NE(rope_error("{\"type\": \"linear\"}").find("factor"), std::string::npos);
    EXPECT_NE(rope_error("{\"type\": \"linear\", \"factor\": -2}").find("factor"), std::string::npos);
    EXPECT_NE(rope_error("{\"rope_type\": \"llama3\", \"factor\": 8}").find("low_freq_factor"), std::string::npos);
    EXPECT_NE(rope_error("{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1, "
                         "\"original_max_position_embeddings\": 64}").find("high_freq_factor"),
              std::string::npos);
    EXPECT_NE(rope_error("[1, 2]").find("rope_scaling"), std::string::npos);
    EXPECT_NE(error(with_rope(tmp, "mistral-tiny", "", "\"hidden_act\"", "\"partial_rotary_factor\": 0.5, \"hidden_act\""))
                  .find("partial_rotary_factor"),
              std::string::npos);
    EXPECT_NE(error(with_rope(tmp, "qwen3-tiny", "", "\"use_sliding_window\": false", "\"use_sliding_window\": true"))
                  .find("use_sliding_window"),
              std::string::npos);
}

TEST(XlmRoberta, MatchesPyTorch) {
    Ref f;
    for (const std::size_t threads : {1, 2}) {
        auto enc = load(encode_fixture("xlmr-tiny"), threads, 3);
        ASSERT_NE(enc, nullptr);
        EXPECT_EQ(enc->info().family, "xlm-roberta");
        EXPECT_EQ(enc->info().max_length, 32u);
        auto out = enc->encode(f.views(), {});
        ASSERT_TRUE(out.ok()) << out.error().message();
        const double d = max_diff(out->dense, *f.ref.find("xlmr-tiny"));
        std::printf("xlmr-tiny: max abs diff vs PyTorch %.3g\n", d);
        EXPECT_LE(d, kTol);
    }
}

// int8: every model of the fixtures stays close to its float32 output (mean cosine; the real-text
// drift on SciFact is measured by scripts/encode_int8_drift and reported in docs/encoders.md).
TEST(Int8, CosineToFloat32) {
    Ref f;
    for (const char* name : {"bert-mean", "bert-cls", "qwen2-tiny", "qwen3-tiny", "xlmr-tiny"}) {
        auto fp = load(encode_fixture(name), 2, 4);
        auto q8 = load(encode_fixture(name), 2, 4, true);
        ASSERT_NE(fp, nullptr);
        ASSERT_NE(q8, nullptr);
        auto a = fp->encode(f.views(), {});
        auto b = q8->encode(f.views(), {});
        ASSERT_TRUE(a.ok() && b.ok());
        double sum = 0.0, worst = 1.0, diff = 0.0;
        for (std::size_t i = 0; i < a->dense.rows; ++i) {
            double dot = 0, na = 0, nb = 0;
            for (std::size_t j = 0; j < a->dense.dim; ++j) {
                const double x = a->dense.row_ptr(i)[j], y = b->dense.row_ptr(i)[j];
                dot += x * y;
                na += x * x;
                nb += y * y;
                diff = std::max(diff, std::abs(x - y));
            }
            const double cos = dot / std::sqrt(na * nb);
            sum += cos;
            worst = std::min(worst, cos);
        }
        const double mean = sum / static_cast<double>(a->dense.rows);
        std::printf("%s int8: mean cosine %.5f, worst %.5f, max abs diff %.3g\n", name, mean, worst, diff);
        EXPECT_GE(mean, 0.99) << name;
        EXPECT_GT(diff, 0.0) << name << ": int8 must actually change the computation";
    }
}

}  // namespace
}  // namespace quiver::encode
