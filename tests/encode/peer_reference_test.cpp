// quiver's outputs against ONNX Runtime on every fixture model and head (dense mean/CLS with f32, f16
// and bf16 weights, SPLADE, ColBERT documents and queries): the fixtures' model.onnx files are
// exported from the same weights by scripts/make_encoder_fixtures.py, run by bench/encode/ort_peer.js
// (onnxruntime-node from tools/node_modules) on the token ids quiver's tokenizer produced, and must
// agree within 1e-5 absolute. PyTorch agreement (float64 references) is bert_test.cpp's, at the same
// tolerance. Skipped, with the reason, when Node.js or onnxruntime-node is not installed.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "encode/encode_testing.h"
#include "quiver/encode/encoder.h"
#include "quiver/storage/file_format.h"
#include "quiver/text/wordpiece.h"
#include "testing/testing.h"

namespace quiver::encode {
namespace {

using quiver::testing::encode_fixture;
using quiver::testing::load_json;
using quiver::testing::TempDir;
using quiver::testing::to_strings;

constexpr double kTol = 1e-5;

struct Rows {
    std::vector<std::vector<std::int32_t>> ids;
    std::vector<std::int32_t> attend;  // keys attended
    std::vector<std::int32_t> keep;    // rows returned
};

// Runs the ONNX export of `model` on `rows`; returns the first output, or sets `skip`.
std::vector<float> run_ort(const std::string& model, const Rows& rows, TempDir& tmp, std::string& skip) {
    std::size_t L = 1;
    for (const auto& r : rows.ids) L = std::max(L, r.size());
    const std::string ids_path = tmp.file("ids.bin");
    const std::string out_path = tmp.file("out.bin");
    {
        std::ofstream f(ids_path, std::ios::binary);
        const auto n = static_cast<std::uint32_t>(rows.ids.size());
        const auto w = static_cast<std::uint32_t>(L);
        f.write(reinterpret_cast<const char*>(&n), 4);
        f.write(reinterpret_cast<const char*>(&w), 4);
        for (auto r : rows.ids) {
            r.resize(L, 0);
            f.write(reinterpret_cast<const char*>(r.data()), static_cast<std::streamsize>(L * 4));
        }
        f.write(reinterpret_cast<const char*>(rows.attend.data()), static_cast<std::streamsize>(n * 4));
        f.write(reinterpret_cast<const char*>(rows.keep.data()), static_cast<std::streamsize>(n * 4));
    }
    const std::string src = QUIVER_SOURCE_DIR;
    const std::string cmd = "node '" + src + "/bench/encode/ort_peer.js' --modules '" + src + "/tools/node_modules' --model '" +
                            encode_fixture(model) + "/model.onnx' --threads 1 --infer '" + ids_path + "' --out '" +
                            out_path + "' > /dev/null 2> '" + tmp.file("err.txt") + "'";
    const int rc = std::system(cmd.c_str());
    const int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (code == 77 || code == 127) {
        skip = code == 77 ? "onnxruntime-node is not installed in tools/node_modules (scripts/install-deps)"
                          : "Node.js is not installed";
        return {};
    }
    auto err = storage::read_file(tmp.file("err.txt"));
    EXPECT_EQ(code, 0) << cmd << "\n" << (err ? *err : std::string());
    auto bytes = storage::read_file(out_path);
    if (!bytes) return {};
    std::vector<float> out(bytes->size() / 4);
    std::memcpy(out.data(), bytes->data(), out.size() * 4);
    return out;
}

struct Texts {
    json::Value ref = load_json(encode_fixture("reference.json"));
    std::vector<std::string> texts = to_strings(*ref.find("texts"));
    std::vector<std::string_view> views() const { return {texts.begin(), texts.end()}; }
};

std::unique_ptr<Encoder> load(const std::string& name) {
    LoadOptions o;
    o.max_length = 32;
    o.threads = 2;
    o.batch = 3;
    auto enc = load_encoder(encode_fixture(name), o);
    EXPECT_TRUE(enc.ok()) << name << ": " << enc.error().message();
    return enc ? std::move(*enc) : nullptr;
}

text::HfTokenizer tokenizer(const std::string& name) {
    auto t = text::HfTokenizer::load(encode_fixture(name) + "/tokenizer.json");
    EXPECT_TRUE(t.ok());
    return t ? std::move(*t) : text::HfTokenizer();
}

class DenseVsOrt : public ::testing::TestWithParam<const char*> {};

TEST_P(DenseVsOrt, WithinTolerance) {
    Texts f;
    auto enc = load(GetParam());
    ASSERT_NE(enc, nullptr);
    auto out = enc->encode(f.views(), {});
    ASSERT_TRUE(out.ok()) << out.error().message();
    const text::HfTokenizer tok = tokenizer(GetParam());
    Rows rows;
    for (const std::string& t : f.texts) {
        auto ids = tok.encode(t, 32);
        ASSERT_TRUE(ids.ok());
        rows.ids.push_back(*ids);
        rows.attend.push_back(static_cast<std::int32_t>(ids->size()));
        rows.keep.push_back(static_cast<std::int32_t>(ids->size()));
    }
    TempDir tmp;
    std::string skip;
    const std::vector<float> ort = run_ort(GetParam(), rows, tmp, skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
    ASSERT_EQ(ort.size(), out->dense.values.size());
    double worst = 0.0;
    for (std::size_t i = 0; i < ort.size(); ++i) worst = std::max(worst, std::abs(double(ort[i]) - out->dense.values[i]));
    std::printf("%s: max |quiver - onnxruntime| = %.3g\n", GetParam(), worst);
    EXPECT_LE(worst, kTol);
}

INSTANTIATE_TEST_SUITE_P(Encode, DenseVsOrt, ::testing::Values("bert-mean", "bert-mean-f16", "bert-mean-bf16", "bert-cls"));

TEST(PeerReference, SpladeVsOrt) {
    Texts f;
    auto enc = load("splade");
    ASSERT_NE(enc, nullptr);
    EncodeOptions eo;
    eo.kind = OutputKind::kSparse;
    auto out = enc->encode(f.views(), eo);
    ASSERT_TRUE(out.ok()) << out.error().message();
    const text::HfTokenizer tok = tokenizer("splade");
    Rows rows;
    for (const std::string& t : f.texts) {
        auto ids = tok.encode(t, 32);
        ASSERT_TRUE(ids.ok());
        rows.ids.push_back(*ids);
        rows.attend.push_back(static_cast<std::int32_t>(ids->size()));
        rows.keep.push_back(static_cast<std::int32_t>(ids->size()));
    }
    TempDir tmp;
    std::string skip;
    const std::vector<float> ort = run_ort("splade", rows, tmp, skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
    const std::size_t V = enc->info().sparse_dim;
    ASSERT_EQ(ort.size(), f.texts.size() * V);
    double worst = 0.0;
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < f.texts.size(); ++i) {
        std::vector<float> dense(V, 0.0f);
        for (std::size_t j = 0; j < out->sparse[i].ids.size(); ++j) dense[out->sparse[i].ids[j]] = out->sparse[i].weights[j];
        for (std::size_t v = 0; v < V; ++v) {
            worst = std::max(worst, std::abs(double(ort[i * V + v]) - dense[v]));
            nonzero += dense[v] > 0.0f ? 1 : 0;
        }
    }
    std::printf("splade: max |quiver - onnxruntime| = %.3g over %zu weights (%zu non-zero)\n", worst, ort.size(), nonzero);
    EXPECT_GT(nonzero, f.texts.size());
    EXPECT_LE(worst, kTol);
}

TEST(PeerReference, ColbertVsOrt) {
    Texts f;
    auto enc = load("colbert");
    ASSERT_NE(enc, nullptr);
    const text::HfTokenizer tok = tokenizer("colbert");
    const json::Value meta = load_json(encode_fixture("colbert/artifact.metadata"));
    const auto qlen = static_cast<std::size_t>(meta.find("query_maxlen")->as_int());
    const std::int32_t q_marker = *tok.token_to_id("[unused0]");
    const std::int32_t d_marker = *tok.token_to_id("[unused1]");
    const std::int32_t mask = *tok.token_to_id("[MASK]");
    std::vector<std::uint8_t> punct(tok.vocab_size(), 0);
    for (char c : std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) {
        if (auto i = tok.token_to_id(std::string(1, c))) punct[static_cast<std::size_t>(*i)] = 1;
    }
    for (const bool query : {false, true}) {
        EncodeOptions eo;
        eo.kind = OutputKind::kMultiVector;
        eo.role = query ? EncodeRole::kQuery : EncodeRole::kDocument;
        auto out = enc->encode(f.views(), eo);
        ASSERT_TRUE(out.ok()) << out.error().message();
        Rows rows;
        const std::size_t limit = query ? qlen : 32;
        for (const std::string& t : f.texts) {
            std::vector<std::int32_t> ids{tok.cls_id(), query ? q_marker : d_marker};
            ASSERT_TRUE(tok.tokenize(t, ids, limit - 3).ok());
            ids.push_back(tok.sep_id());
            rows.attend.push_back(static_cast<std::int32_t>(ids.size()));
            if (query) ids.resize(limit, mask);
            rows.keep.push_back(static_cast<std::int32_t>(ids.size()));
            rows.ids.push_back(std::move(ids));
        }
        TempDir tmp;
        std::string skip;
        const std::vector<float> ort = run_ort("colbert", rows, tmp, skip);
        if (!skip.empty()) GTEST_SKIP() << skip;
        std::size_t L = 0;
        for (const auto& r : rows.ids) L = std::max(L, r.size());
        const std::size_t D = enc->info().multivector_dim;
        ASSERT_EQ(ort.size(), f.texts.size() * L * D);
        double worst = 0.0;
        for (std::size_t i = 0; i < f.texts.size(); ++i) {
            std::size_t kept = 0;
            for (std::size_t j = 0; j < rows.ids[i].size(); ++j) {
                if (!query && punct[static_cast<std::size_t>(rows.ids[i][j])] != 0) continue;  // documents drop punctuation
                ASSERT_LT(kept, out->multi[i].rows);
                for (std::size_t c = 0; c < D; ++c) {
                    worst = std::max(worst, std::abs(double(ort[(i * L + j) * D + c]) - out->multi[i].row_ptr(kept)[c]));
                }
                ++kept;
            }
            EXPECT_EQ(kept, out->multi[i].rows) << i;
        }
        std::printf("colbert %s: max |quiver - onnxruntime| = %.3g\n", query ? "queries" : "documents", worst);
        EXPECT_LE(worst, kTol);
    }
}

}  // namespace
}  // namespace quiver::encode
