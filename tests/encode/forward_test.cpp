// BertModel::forward's execution paths against a double-precision forward pass written from the BERT
// formulas in this file (no shared code): single-threaded; with a team and few rows (each thread
// computes its heads' query/key/value panels and then their attention); with a team and many rows
// (products split by panels, attention by (sequence, head)). The models are random, with head widths
// of 32 and 64 (one and two GEMM panels per head) and an intermediate width of 512 floats (2 KiB rows:
// the padded activation stride) or 80 (a partial panel), so every path and tail is taken.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "encode/bert_model.h"
#include "quiver/core/thread_pool.h"
#include "quiver/encode/safetensors.h"
#include "testing/testing.h"

namespace quiver::encode::detail {
namespace {

using quiver::testing::TempDir;
using quiver::testing::write_bytes;

struct Shape {
    std::size_t vocab = 40, hidden = 0, heads = 0, inter = 0, layers = 2, positions = 160;
};

using Tensors = std::map<std::string, std::pair<std::vector<std::size_t>, std::vector<float>>>;

Tensors random_weights(const Shape& s, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Tensors t;
    auto add = [&](const std::string& name, std::vector<std::size_t> shape, float scale, float mean = 0.0f) {
        std::size_t n = 1;
        for (std::size_t d : shape) n *= d;
        std::vector<float> v(n);
        for (float& x : v) x = mean + scale * nd(rng);
        t[name] = {std::move(shape), std::move(v)};
    };
    const std::size_t H = s.hidden, I = s.inter;
    add("embeddings.word_embeddings.weight", {s.vocab, H}, 1.0f);
    add("embeddings.position_embeddings.weight", {s.positions, H}, 0.5f);
    add("embeddings.token_type_embeddings.weight", {2, H}, 0.5f);
    add("embeddings.LayerNorm.weight", {H}, 0.1f, 1.0f);
    add("embeddings.LayerNorm.bias", {H}, 0.1f);
    const float wh = 1.0f / std::sqrt(static_cast<float>(H));
    const float wi = 1.0f / std::sqrt(static_cast<float>(I));
    for (std::size_t l = 0; l < s.layers; ++l) {
        const std::string p = "encoder.layer." + std::to_string(l) + ".";
        for (const char* n : {"query", "key", "value"}) {
            add(p + "attention.self." + n + ".weight", {H, H}, wh);
            add(p + "attention.self." + n + ".bias", {H}, 0.1f);
        }
        add(p + "attention.output.dense.weight", {H, H}, wh);
        add(p + "attention.output.dense.bias", {H}, 0.1f);
        add(p + "attention.output.LayerNorm.weight", {H}, 0.1f, 1.0f);
        add(p + "attention.output.LayerNorm.bias", {H}, 0.1f);
        add(p + "intermediate.dense.weight", {I, H}, wh);
        add(p + "intermediate.dense.bias", {I}, 0.1f);
        add(p + "output.dense.weight", {H, I}, wi);
        add(p + "output.dense.bias", {H}, 0.1f);
        add(p + "output.LayerNorm.weight", {H}, 0.1f, 1.0f);
        add(p + "output.LayerNorm.bias", {H}, 0.1f);
    }
    return t;
}

void write_safetensors(const std::string& path, const Tensors& t) {
    std::string header = "{";
    std::string data;
    for (const auto& [name, tensor] : t) {
        const auto& [shape, values] = tensor;
        std::string dims;
        for (std::size_t d : shape) dims += (dims.empty() ? "" : ",") + std::to_string(d);
        const std::size_t begin = data.size();
        data.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
        header += (header.size() > 1 ? "," : "") + ("\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + dims +
                                                    "],\"data_offsets\":[" + std::to_string(begin) + "," +
                                                    std::to_string(data.size()) + "]}");
    }
    header += "}";
    std::string out(8, '\0');
    const std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
    write_bytes(path, out + header + data);
}

// The reference: every step in double precision, straight from the formulas.
std::vector<double> reference_forward(const Shape& s, const Tensors& t, const std::vector<std::vector<std::int32_t>>& ids,
                                      const std::vector<std::size_t>& attend) {
    const std::size_t H = s.hidden, I = s.inter, nh = s.heads, d = H / nh;
    auto w = [&](const std::string& name) -> const std::vector<float>& { return t.at(name).second; };
    auto layernorm = [&](std::vector<double>& row, const std::string& prefix) {
        const std::vector<float>& gamma = w(prefix + "weight");
        const std::vector<float>& beta = w(prefix + "bias");
        double mean = 0, var = 0;
        for (double v : row) mean += v;
        mean /= static_cast<double>(H);
        for (double v : row) var += (v - mean) * (v - mean);
        var /= static_cast<double>(H);
        for (std::size_t c = 0; c < H; ++c) {
            row[c] = (row[c] - mean) / std::sqrt(var + 1e-12) * gamma[c] + beta[c];
        }
    };
    // y = x W^T + b for W [out][in].
    auto linear = [&](const std::vector<double>& x, const std::string& prefix, std::size_t out, std::size_t in) {
        const std::vector<float>& weight = w(prefix + "weight");
        const std::vector<float>& bias = w(prefix + "bias");
        std::vector<double> y(out);
        for (std::size_t j = 0; j < out; ++j) {
            double acc = bias[j];
            for (std::size_t i = 0; i < in; ++i) acc += x[i] * weight[j * in + i];
            y[j] = acc;
        }
        return y;
    };
    std::vector<double> result;
    for (std::size_t b = 0; b < ids.size(); ++b) {
        const std::size_t n = ids[b].size();
        const std::vector<float>& word = w("embeddings.word_embeddings.weight");
        const std::vector<float>& position = w("embeddings.position_embeddings.weight");
        const std::vector<float>& type = w("embeddings.token_type_embeddings.weight");
        std::vector<std::vector<double>> x(n, std::vector<double>(H));
        for (std::size_t j = 0; j < n; ++j) {
            for (std::size_t c = 0; c < H; ++c) {
                x[j][c] = double(word[static_cast<std::size_t>(ids[b][j]) * H + c]) + position[j * H + c] + type[c];
            }
            layernorm(x[j], "embeddings.LayerNorm.");
        }
        for (std::size_t l = 0; l < s.layers; ++l) {
            const std::string p = "encoder.layer." + std::to_string(l) + ".";
            std::vector<std::vector<double>> q(n), k(n), v(n), ctx(n, std::vector<double>(H, 0.0));
            for (std::size_t j = 0; j < n; ++j) {
                q[j] = linear(x[j], p + "attention.self.query.", H, H);
                k[j] = linear(x[j], p + "attention.self.key.", H, H);
                v[j] = linear(x[j], p + "attention.self.value.", H, H);
            }
            for (std::size_t h = 0; h < nh; ++h) {
                for (std::size_t i = 0; i < n; ++i) {
                    std::vector<double> sc(attend[b]);
                    double mx = -1e300, sum = 0;
                    for (std::size_t j = 0; j < attend[b]; ++j) {
                        double dot = 0;
                        for (std::size_t c = 0; c < d; ++c) dot += q[i][h * d + c] * k[j][h * d + c];
                        sc[j] = dot / std::sqrt(static_cast<double>(d));
                        mx = std::max(mx, sc[j]);
                    }
                    for (double& e : sc) sum += (e = std::exp(e - mx));
                    for (std::size_t j = 0; j < attend[b]; ++j) {
                        for (std::size_t c = 0; c < d; ++c) ctx[i][h * d + c] += sc[j] / sum * v[j][h * d + c];
                    }
                }
            }
            for (std::size_t j = 0; j < n; ++j) {
                const auto o = linear(ctx[j], p + "attention.output.dense.", H, H);
                for (std::size_t c = 0; c < H; ++c) x[j][c] += o[c];
                layernorm(x[j], p + "attention.output.LayerNorm.");
                auto mid = linear(x[j], p + "intermediate.dense.", I, H);
                for (double& m : mid) m = 0.5 * m * (1.0 + std::erf(m / std::sqrt(2.0)));
                const auto out = linear(mid, p + "output.dense.", H, I);
                for (std::size_t c = 0; c < H; ++c) x[j][c] += out[c];
                layernorm(x[j], p + "output.LayerNorm.");
            }
        }
        for (const auto& row : x) result.insert(result.end(), row.begin(), row.end());
    }
    return result;
}

struct Case {
    const char* name;
    Shape shape;
    std::vector<std::size_t> lengths;
    std::size_t short_attend = 0;  // when > 0: the last sequence attends to its first this many keys
};

TEST(BertForward, EveryThreadingPathMatchesADoublePrecisionReference) {
    const std::vector<Case> cases = {
        // A query (16 rows: the per-head path with a team), head width 32, 2 KiB intermediate rows.
        {"query d32", {40, 64, 2, 512, 2, 160}, {16}, 0},
        // Several short sequences, one attending to a prefix (ColBERT's [MASK] padding), head width 64.
        {"short batch d64", {40, 128, 2, 80, 2, 160}, {16, 5, 9}, 4},
        // 300 rows: the team splits products by panels and attention by (sequence, head).
        {"long batch d32", {40, 64, 2, 512, 2, 160}, {150, 100, 50}, 20},
        // Head width 16 (not whole panels): the per-head path is not taken even for a query.
        {"query d16", {40, 64, 4, 96, 2, 160}, {12}, 0},
    };
    std::uint64_t seed = 1;
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        const Shape& s = c.shape;
        const Tensors weights = random_weights(s, seed++);
        TempDir tmp;
        write_safetensors(tmp.file("model.safetensors"), weights);
        auto st = SafeTensors::open(tmp.file("model.safetensors"));
        ASSERT_TRUE(st.ok()) << st.error().message();
        BertConfig cfg;
        cfg.vocab_size = s.vocab;
        cfg.hidden = s.hidden;
        cfg.layers = s.layers;
        cfg.heads = s.heads;
        cfg.intermediate = s.inter;
        cfg.max_position = s.positions;
        cfg.type_vocab = 2;
        auto model = BertModel::load(*st, cfg, false);
        ASSERT_TRUE(model.ok()) << model.error().message();

        std::mt19937 rng(static_cast<unsigned>(seed));
        std::vector<std::vector<std::int32_t>> ids;
        std::vector<std::size_t> attend;
        std::vector<BertSequence> seqs;
        for (std::size_t i = 0; i < c.lengths.size(); ++i) {
            std::vector<std::int32_t> row(c.lengths[i]);
            for (auto& id : row) id = static_cast<std::int32_t>(rng() % s.vocab);
            ids.push_back(std::move(row));
            const bool last = i + 1 == c.lengths.size();
            attend.push_back(last && c.short_attend > 0 ? c.short_attend : c.lengths[i]);
        }
        for (std::size_t i = 0; i < ids.size(); ++i) seqs.push_back({ids[i].data(), ids[i].size(), attend[i]});
        const std::vector<double> want = reference_forward(s, weights, ids, attend);

        for (const std::size_t threads : {1, 2, 3}) {
            ThreadPool pool(threads);
            BertWorkspace ws;
            for (int round = 0; round < 2; ++round) {  // the second reuses the grown workspace
                model->forward(seqs, ws, threads > 1 ? &pool : nullptr);
                ASSERT_EQ(ws.offsets.back() * s.hidden, want.size());
                double worst = 0.0;
                for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(ws.x[i] - want[i]));
                EXPECT_LE(worst, 2e-5) << threads << " threads, round " << round;
            }
        }
    }
}

}  // namespace
}  // namespace quiver::encode::detail
