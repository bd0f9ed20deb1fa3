#include "encode/decoder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <optional>
#include <tuple>

#include "encode/bert_kernels.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/simd/kernels.h"
#include "quiver/storage/file_format.h"

namespace quiver::encode::detail {

namespace fs = std::filesystem;

namespace {

Result<std::size_t> size_of(const json::Value& doc, std::string_view key, const std::string& path,
                            std::optional<std::size_t> fallback = std::nullopt) {
    const json::Value* v = doc.find(key);
    if (v == nullptr || v->is_null()) {
        if (fallback) return *fallback;
        return invalid_argument(fmt::format("'{}' has no '{}'", path, key));
    }
    if (!v->is_integer() || v->as_int() <= 0) {
        return invalid_argument(fmt::format("'{}': '{}' must be a positive integer", path, key));
    }
    return static_cast<std::size_t>(v->as_int());
}

Result<json::Value> read_json(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(path));
    auto v = json::parse(text);
    if (!v) return std::move(v).error().with_context(fmt::format("parsing '{}'", path));
    return std::move(*v);
}

void ensure(std::vector<float>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
}

void rms_norm(const float* x, const float* w, float* out, std::size_t rows, std::size_t cols, float eps) {
    for (std::size_t r = 0; r < rows; ++r) {
        const float* xr = x + r * cols;
        float* o = out + r * cols;
        double ss = 0.0;
        for (std::size_t c = 0; c < cols; ++c) ss += static_cast<double>(xr[c]) * xr[c];
        const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(cols) + eps));
        for (std::size_t c = 0; c < cols; ++c) o[c] = w[c] * (xr[c] * inv);
    }
}

}  // namespace

namespace {

// The rope_scaling object: its type ("rope_type", or "type" in older configs) and parameters.
Status parse_rope(const json::Value& rs, DecoderConfig& c, const std::string& path) {
    using Rope = DecoderConfig::Rope;
    if (!rs.is_object()) return invalid_argument(fmt::format("'{}': rope_scaling is not an object", path));
    const json::Value* type = rs.find("rope_type");
    if (type == nullptr || type->is_null()) type = rs.find("type");
    const std::string t = (type != nullptr && type->is_string()) ? type->as_string() : "default";
    if (t == "default") return ok_status();
    auto number = [&](const char* key, bool required, double fallback) -> Result<double> {
        const json::Value* v = rs.find(key);
        if (v == nullptr || v->is_null()) {
            if (required) return invalid_argument(fmt::format("'{}': rope_scaling '{}' needs '{}'", path, t, key));
            return fallback;
        }
        if (!v->is_number() || !std::isfinite(v->as_number()) || v->as_number() <= 0.0) {
            return invalid_argument(fmt::format("'{}': rope_scaling '{}' must be a positive number", path, key));
        }
        return v->as_number();
    };
    if (t == "linear") c.rope = Rope::kLinear;
    else if (t == "dynamic") c.rope = Rope::kDynamic;
    else if (t == "yarn") c.rope = Rope::kYarn;
    else if (t == "llama3") c.rope = Rope::kLlama3;
    else return unimplemented(fmt::format("'{}': rope_scaling type '{}' (supported: linear, dynamic, yarn, llama3)", path, t));
    QUIVER_ASSIGN_OR_RETURN(c.rope_factor, number("factor", true, 1.0));
    if (c.rope == Rope::kDynamic && c.head_dim <= 2) {
        return invalid_argument(fmt::format("'{}': dynamic RoPE needs head_dim above 2", path));
    }
    if (c.rope == Rope::kLlama3) {
        QUIVER_ASSIGN_OR_RETURN(c.rope_low_freq, number("low_freq_factor", true, 1.0));
        QUIVER_ASSIGN_OR_RETURN(c.rope_high_freq, number("high_freq_factor", true, 4.0));
        QUIVER_ASSIGN_OR_RETURN(c.rope_original_max, number("original_max_position_embeddings", true, 0.0));
        if (c.rope_high_freq <= c.rope_low_freq) {
            return invalid_argument(fmt::format("'{}': llama3 rope_scaling needs high_freq_factor above low_freq_factor", path));
        }
    }
    if (c.rope == Rope::kYarn) {
        QUIVER_ASSIGN_OR_RETURN(c.rope_original_max, number("original_max_position_embeddings", false,
                                                            static_cast<double>(c.max_position)));
        // beta_fast / beta_slow fall back to 32 / 1 when absent or zero (the library's `or`).
        for (auto [key, out, fallback] : {std::tuple{"beta_fast", &c.yarn_beta_fast, 32.0},
                                          std::tuple{"beta_slow", &c.yarn_beta_slow, 1.0}}) {
            const json::Value* v = rs.find(key);
            if (v == nullptr || v->is_null() || (v->is_number() && v->as_number() == 0.0)) {
                *out = fallback;
            } else if (v->is_number() && std::isfinite(v->as_number())) {
                *out = v->as_number();
            } else {
                return invalid_argument(fmt::format("'{}': rope_scaling '{}' is not a number", path, key));
            }
        }
        if (const json::Value* tr = rs.find("truncate"); tr != nullptr && tr->is_bool()) c.yarn_truncate = tr->as_bool();
        auto mscale = [](double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
        const json::Value* af = rs.find("attention_factor");
        const json::Value* ms = rs.find("mscale");
        const json::Value* msa = rs.find("mscale_all_dim");
        const bool both = ms != nullptr && ms->is_number() && ms->as_number() != 0.0 && msa != nullptr && msa->is_number() &&
                          msa->as_number() != 0.0;
        if (af != nullptr && !af->is_null()) {
            QUIVER_ASSIGN_OR_RETURN(c.rope_attention, number("attention_factor", true, 1.0));
        } else if (both) {
            c.rope_attention = mscale(c.rope_factor, ms->as_number()) / mscale(c.rope_factor, msa->as_number());
        } else {
            c.rope_attention = mscale(c.rope_factor, 1.0);
        }
    }
    return ok_status();
}

}  // namespace

double DecoderConfig::rope_frequencies(std::size_t length, std::vector<float>& inv_freq) const {
    const std::size_t half = head_dim / 2;
    const auto d = static_cast<double>(head_dim);
    const auto max_pos = static_cast<double>(max_position);
    double base = rope_theta;
    if (rope == Rope::kDynamic) {
        const double L = std::max(static_cast<double>(length), max_pos);
        base *= std::pow(rope_factor * L / max_pos - (rope_factor - 1.0), d / (d - 2.0));
    }
    inv_freq.resize(half);
    std::vector<double> inv(half);
    for (std::size_t i = 0; i < half; ++i) inv[i] = 1.0 / std::pow(base, static_cast<double>(2 * i) / d);
    constexpr double kPi = 3.14159265358979323846;
    switch (rope) {
        case Rope::kDefault:
        case Rope::kDynamic:
            break;
        case Rope::kLinear:
            for (double& f : inv) f /= rope_factor;
            break;
        case Rope::kLlama3: {
            const double low_wavelen = rope_original_max / rope_low_freq;
            const double high_wavelen = rope_original_max / rope_high_freq;
            for (double& f : inv) {
                const double wavelen = 2.0 * kPi / f;
                if (wavelen < high_wavelen) continue;
                if (wavelen > low_wavelen) {
                    f /= rope_factor;
                } else {
                    const double smooth = (rope_original_max / wavelen - rope_low_freq) / (rope_high_freq - rope_low_freq);
                    f = (1.0 - smooth) * f / rope_factor + smooth * f;
                }
            }
            break;
        }
        case Rope::kYarn: {
            auto correction = [&](double rotations) {
                return d * std::log(rope_original_max / (rotations * 2.0 * kPi)) / (2.0 * std::log(rope_theta));
            };
            double low = correction(yarn_beta_fast);
            double high = correction(yarn_beta_slow);
            if (yarn_truncate) {
                low = std::floor(low);
                high = std::ceil(high);
            }
            low = std::max(low, 0.0);
            high = std::min(high, d - 1.0);
            if (low == high) high += 0.001;
            for (std::size_t i = 0; i < half; ++i) {
                const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
                const double extrapolation = 1.0 - ramp;
                inv[i] = inv[i] / rope_factor * (1.0 - extrapolation) + inv[i] * extrapolation;
            }
            break;
        }
    }
    for (std::size_t i = 0; i < half; ++i) inv_freq[i] = static_cast<float>(inv[i]);
    return rope == Rope::kYarn ? rope_attention : 1.0;
}

bool DecoderConfig::is_decoder(std::string_view t) noexcept {
    return t == "qwen2" || t == "qwen3" || t == "mistral" || t == "llama";
}

Result<DecoderConfig> DecoderConfig::parse(std::string_view json_text, const std::string& path) {
    auto doc = json::parse(json_text);
    if (!doc) return std::move(doc).error().with_context(fmt::format("parsing '{}'", path));
    if (!doc->is_object()) return invalid_argument(fmt::format("'{}' is not a JSON object", path));
    DecoderConfig c;
    const json::Value* mt = doc->find("model_type");
    if (mt == nullptr || !mt->is_string() || !is_decoder(mt->as_string())) {
        return invalid_argument(fmt::format("'{}': model_type must be qwen2, qwen3, mistral or llama", path));
    }
    c.model_type = mt->as_string();
    if (const json::Value* act = doc->find("hidden_act"); act != nullptr && act->is_string() && act->as_string() != "silu") {
        return unimplemented(fmt::format("'{}': hidden_act '{}' (decoders: only 'silu')", path, act->as_string()));
    }
    QUIVER_ASSIGN_OR_RETURN(c.vocab_size, size_of(*doc, "vocab_size", path));
    QUIVER_ASSIGN_OR_RETURN(c.hidden, size_of(*doc, "hidden_size", path));
    QUIVER_ASSIGN_OR_RETURN(c.layers, size_of(*doc, "num_hidden_layers", path));
    QUIVER_ASSIGN_OR_RETURN(c.heads, size_of(*doc, "num_attention_heads", path));
    QUIVER_ASSIGN_OR_RETURN(c.kv_heads, size_of(*doc, "num_key_value_heads", path, c.heads));
    QUIVER_ASSIGN_OR_RETURN(c.intermediate, size_of(*doc, "intermediate_size", path));
    QUIVER_ASSIGN_OR_RETURN(c.max_position, size_of(*doc, "max_position_embeddings", path));
    if (c.hidden % c.heads != 0 && doc->find("head_dim") == nullptr) {
        return invalid_argument(fmt::format("'{}': hidden_size {} is not a multiple of num_attention_heads {}", path,
                                            c.hidden, c.heads));
    }
    QUIVER_ASSIGN_OR_RETURN(c.head_dim, size_of(*doc, "head_dim", path, c.hidden / c.heads));
    if (c.heads % c.kv_heads != 0) {
        return invalid_argument(fmt::format("'{}': num_attention_heads {} is not a multiple of num_key_value_heads {}",
                                            path, c.heads, c.kv_heads));
    }
    if (c.head_dim % 2 != 0) return invalid_argument(fmt::format("'{}': head_dim {} is odd (RoPE pairs)", path, c.head_dim));
    if (const json::Value* e = doc->find("rms_norm_eps"); e != nullptr && e->is_number()) {
        c.rms_norm_eps = static_cast<float>(e->as_number());
    }
    if (const json::Value* t = doc->find("rope_theta"); t != nullptr && t->is_number()) c.rope_theta = t->as_number();
    if (const json::Value* f = doc->find("partial_rotary_factor"); f != nullptr && f->is_number() && f->as_number() != 1.0) {
        return unimplemented(fmt::format("'{}': partial_rotary_factor {} (decoders rotate the whole head)", path, f->as_number()));
    }
    if (const json::Value* sw = doc->find("use_sliding_window"); sw != nullptr && sw->is_bool() && sw->as_bool()) {
        return unimplemented(fmt::format("'{}': use_sliding_window (decoders attend to the whole sequence)", path));
    }
    // rope_scaling (transformers < 5) or rope_parameters (transformers 5, which also holds rope_theta).
    const json::Value* rope = doc->find("rope_scaling");
    if (rope == nullptr || rope->is_null()) {
        rope = doc->find("rope_parameters");
        if (rope != nullptr && rope->is_object()) {
            if (const json::Value* t = rope->find("rope_theta"); t != nullptr && t->is_number()) c.rope_theta = t->as_number();
        }
    }
    if (!(c.rope_theta > 1.0) || !std::isfinite(c.rope_theta)) {
        return invalid_argument(fmt::format("'{}': rope_theta {} must be a number above 1", path, c.rope_theta));
    }
    if (rope != nullptr && !rope->is_null()) QUIVER_TRY(parse_rope(*rope, c, path));
    c.qk_norm = c.model_type == "qwen3";
    return c;
}

Result<DecoderModel> DecoderModel::load(const SafeTensors& st, const DecoderConfig& config, bool int8) {
    DecoderModel m;
    m.config_ = config;
    std::string p;
    if (st.contains("model.embed_tokens.weight")) {
        p = "model.";
    } else if (!st.contains("embed_tokens.weight")) {
        return not_found(fmt::format("'{}' has no decoder embeddings ('embed_tokens.weight' or 'model.embed_tokens.weight')",
                                     st.path()));
    }
    const std::size_t H = config.hidden, I = config.intermediate, d = config.head_dim;
    const std::size_t qn = config.heads * d, kvn = config.kv_heads * d;
    auto load = [&](const std::string& name, std::vector<std::size_t> shape) { return st.to_float(p + name, shape); };
    QUIVER_ASSIGN_OR_RETURN(m.embed_, load("embed_tokens.weight", {config.vocab_size, H}));
    QUIVER_ASSIGN_OR_RETURN(m.norm_, load("norm.weight", {H}));
    for (std::size_t l = 0; l < config.layers; ++l) {
        const std::string lp = fmt::format("layers.{}.", l);
        DecoderLayer L;
        QUIVER_ASSIGN_OR_RETURN(L.ln1, load(lp + "input_layernorm.weight", {H}));
        QUIVER_ASSIGN_OR_RETURN(L.ln2, load(lp + "post_attention_layernorm.weight", {H}));
        std::vector<float> wqkv;
        const bool bias = st.contains(p + lp + "self_attn.q_proj.bias");
        for (const auto& [n, rows] : {std::pair{"q", qn}, std::pair{"k", kvn}, std::pair{"v", kvn}}) {
            QUIVER_ASSIGN_OR_RETURN(auto w, load(lp + "self_attn." + n + "_proj.weight", {rows, H}));
            wqkv.insert(wqkv.end(), w.begin(), w.end());
            if (bias) {
                QUIVER_ASSIGN_OR_RETURN(auto b, load(lp + "self_attn." + n + "_proj.bias", {rows}));
                L.bqkv.insert(L.bqkv.end(), b.begin(), b.end());
            }
        }
        L.qkv = Linear(wqkv.data(), qn + 2 * kvn, H, int8);
        if (config.qk_norm) {
            QUIVER_ASSIGN_OR_RETURN(L.q_norm, load(lp + "self_attn.q_norm.weight", {d}));
            QUIVER_ASSIGN_OR_RETURN(L.k_norm, load(lp + "self_attn.k_norm.weight", {d}));
        }
        QUIVER_ASSIGN_OR_RETURN(auto wo, load(lp + "self_attn.o_proj.weight", {H, qn}));
        L.o = Linear(wo.data(), H, qn, int8);
        QUIVER_ASSIGN_OR_RETURN(auto gate, load(lp + "mlp.gate_proj.weight", {I, H}));
        QUIVER_ASSIGN_OR_RETURN(auto up, load(lp + "mlp.up_proj.weight", {I, H}));
        gate.insert(gate.end(), up.begin(), up.end());
        L.gate_up = Linear(gate.data(), 2 * I, H, int8);
        QUIVER_ASSIGN_OR_RETURN(auto down, load(lp + "mlp.down_proj.weight", {H, I}));
        L.down = Linear(down.data(), H, I, int8);
        m.layers_.push_back(std::move(L));
    }
    if (st.contains(fmt::format("{}layers.{}.input_layernorm.weight", p, config.layers))) {
        return invalid_argument(fmt::format("'{}' has more layers than num_hidden_layers = {} in config.json", st.path(),
                                            config.layers));
    }
    m.rope_attention_ = config.rope_frequencies(config.max_position, m.inv_freq_);
    return m;
}

void DecoderModel::forward(std::span<const BertSequence> seqs, DecoderWorkspace& ws, ThreadPool* team) const {
    const BertKernels& k = bert_kernels();
    const DecoderConfig& c = config_;
    const std::size_t H = c.hidden, I = c.intermediate, d = c.head_dim, half = d / 2;
    const std::size_t qn = c.heads * d, kvn = c.kv_heads * d, W = qn + 2 * kvn;
    const std::size_t group = c.heads / c.kv_heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const std::size_t threads = team != nullptr ? team->size() : 1;
    ws.offsets.assign(seqs.size() + 1, 0);
    for (std::size_t b = 0; b < seqs.size(); ++b) ws.offsets[b + 1] = ws.offsets[b] + seqs[b].length;
    const std::size_t T = ws.offsets.back();
    if (T == 0) return;
    ensure(ws.x, T * H);
    ensure(ws.h, T * H);
    ensure(ws.qkv, T * W);
    ensure(ws.ctx, T * qn);
    ensure(ws.gu, T * 2 * I);
    ensure(ws.inter, T * I);
    if (ws.attention.size() < threads) ws.attention.resize(threads);
    float* x = ws.x.data();
    for (std::size_t b = 0; b < seqs.size(); ++b) {
        for (std::size_t j = 0; j < seqs[b].length; ++j) {
            std::memcpy(x + (ws.offsets[b] + j) * H, embed_.data() + static_cast<std::size_t>(seqs[b].ids[j]) * H,
                        H * sizeof(float));
        }
    }
    auto rope = [&](float* v, const float* cs, const float* sn) {
        for (std::size_t i = 0; i < half; ++i) {
            const float a = v[i], b = v[i + half];
            v[i] = a * cs[i] - b * sn[i];
            v[i + half] = b * cs[i] + a * sn[i];
        }
    };
    // One (sequence, query head): causal scores over keys [0, i] for query i, softmax, times values.
    auto attend_head = [&](std::size_t b, std::size_t h, std::size_t worker) {
        const std::size_t n = seqs[b].length;
        AttentionScratch& sc = ws.attention[worker];
        const float* base = ws.qkv.data() + ws.offsets[b] * W;
        const std::size_t kvh = h / group;
        pack_rows(base + qn + kvh * d, n, d, W, sc.keys);
        pack_cols(base + qn + kvn + kvh * d, n, d, W, sc.values);
        ensure(sc.scores, n * n);
        GemmArgs qk;
        qk.a = base + h * d;
        qk.lda = W;
        qk.m = n;
        qk.c = sc.scores.data();
        qk.ldc = n;
        qk.alpha = scale;
        gemm(qk, sc.keys);
        for (std::size_t i = 0; i < n; ++i) {
            float* row = sc.scores.data() + i * n;
            k.softmax(row, 1, i + 1, n);
            std::fill(row + i + 1, row + n, 0.0f);
        }
        GemmArgs pv;
        pv.a = sc.scores.data();
        pv.lda = n;
        pv.m = n;
        pv.c = ws.ctx.data() + ws.offsets[b] * qn + h * d;
        pv.ldc = qn;
        gemm(pv, sc.values);
    };
    // cos and sin of every position of every sequence (dynamic RoPE: the sequence's own frequencies).
    ensure(ws.cos, T * half);
    ensure(ws.sin, T * half);
    for (std::size_t b = 0; b < seqs.size(); ++b) {
        const std::size_t n = seqs[b].length;
        const std::vector<float>* inv = &inv_freq_;
        double attention = rope_attention_;
        if (c.rope == DecoderConfig::Rope::kDynamic && n > c.max_position) {
            attention = c.rope_frequencies(n, ws.inv_freq);
            inv = &ws.inv_freq;
        }
        for (std::size_t j = 0; j < n; ++j) {
            for (std::size_t i = 0; i < half; ++i) {
                const double angle = static_cast<double>(j) * static_cast<double>((*inv)[i]);
                ws.cos[(ws.offsets[b] + j) * half + i] = static_cast<float>(std::cos(angle) * attention);
                ws.sin[(ws.offsets[b] + j) * half + i] = static_cast<float>(std::sin(angle) * attention);
            }
        }
    }
    for (const DecoderLayer& L : layers_) {
        rms_norm(x, L.ln1.data(), ws.h.data(), T, H, c.rms_norm_eps);
        L.qkv.apply(team, ws.h.data(), H, T, ws.qkv.data(), W, L.bqkv.empty() ? nullptr : L.bqkv.data(), false, ws.linear);
        for (std::size_t b = 0; b < seqs.size(); ++b) {
            const std::size_t n = seqs[b].length;
            for (std::size_t j = 0; j < n; ++j) {
                float* row = ws.qkv.data() + (ws.offsets[b] + j) * W;
                const float* cs = ws.cos.data() + (ws.offsets[b] + j) * half;
                const float* sn = ws.sin.data() + (ws.offsets[b] + j) * half;
                if (c.qk_norm) {
                    for (std::size_t h = 0; h < c.heads; ++h) rms_norm(row + h * d, L.q_norm.data(), row + h * d, 1, d, c.rms_norm_eps);
                    for (std::size_t h = 0; h < c.kv_heads; ++h) {
                        rms_norm(row + qn + h * d, L.k_norm.data(), row + qn + h * d, 1, d, c.rms_norm_eps);
                    }
                }
                for (std::size_t h = 0; h < c.heads; ++h) rope(row + h * d, cs, sn);
                for (std::size_t h = 0; h < c.kv_heads; ++h) rope(row + qn + h * d, cs, sn);
            }
        }
        const std::size_t pairs = seqs.size() * c.heads;
        if (threads <= 1) {
            for (std::size_t i = 0; i < pairs; ++i) {
                if (seqs[i / c.heads].length != 0) attend_head(i / c.heads, i % c.heads, 0);
            }
        } else {
            team->parallel_for(pairs, [&](std::size_t i, std::size_t worker) {
                if (seqs[i / c.heads].length != 0) attend_head(i / c.heads, i % c.heads, worker);
            });
        }
        L.o.apply(team, ws.ctx.data(), qn, T, x, H, nullptr, true, ws.linear);  // residual: accumulate onto x
        rms_norm(x, L.ln2.data(), ws.h.data(), T, H, c.rms_norm_eps);
        L.gate_up.apply(team, ws.h.data(), H, T, ws.gu.data(), 2 * I, nullptr, false, ws.linear);
        for (std::size_t r = 0; r < T; ++r) {
            const float* g = ws.gu.data() + r * 2 * I;
            const float* u = g + I;
            float* o = ws.inter.data() + r * I;
            for (std::size_t i = 0; i < I; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
        }
        L.down.apply(team, ws.inter.data(), I, T, x, H, nullptr, true, ws.linear);
    }
    rms_norm(x, norm_.data(), x, T, H, c.rms_norm_eps);
}

// ---------------------------------------------------------------------------------------------
// DecoderEncoder

Result<std::unique_ptr<DecoderEncoder>> DecoderEncoder::load(const std::string& dir, const LoadOptions& options) {
    auto enc = std::unique_ptr<DecoderEncoder>(new DecoderEncoder());
    enc->options_ = options;
    auto join = [&](const std::string& name) { return (fs::path(dir) / name).string(); };
    QUIVER_ASSIGN_OR_RETURN(std::string config_text, storage::read_file(join("config.json")));
    QUIVER_ASSIGN_OR_RETURN(DecoderConfig config, DecoderConfig::parse(config_text, join("config.json")));
    if (!fs::exists(join("model.safetensors"))) {
        return not_found(fmt::format("model folder '{}' has no model.safetensors", dir));
    }
    QUIVER_ASSIGN_OR_RETURN(SafeTensors st, SafeTensors::open(join("model.safetensors")));
    QUIVER_ASSIGN_OR_RETURN(enc->model_, DecoderModel::load(st, config, options.int8));
    if (!fs::exists(join("tokenizer.json"))) return not_found(fmt::format("model folder '{}' has no tokenizer.json", dir));
    QUIVER_ASSIGN_OR_RETURN(enc->tokenizer_, text::HfTokenizer::load(join("tokenizer.json")));
    if (enc->tokenizer_.vocab_size() > config.vocab_size) {
        return invalid_argument(fmt::format("model folder '{}': the tokenizer has {} tokens but config.json vocab_size is {}",
                                            dir, enc->tokenizer_.vocab_size(), config.vocab_size));
    }
    std::size_t st_max = std::numeric_limits<std::size_t>::max();
    if (fs::exists(join("modules.json"))) {
        QUIVER_ASSIGN_OR_RETURN(json::Value mods, read_json(join("modules.json")));
        if (!mods.is_array()) return invalid_argument(fmt::format("'{}' is not a JSON array", join("modules.json")));
        for (const auto& mod : mods.as_array()) {
            const json::Value* type = mod.find("type");
            const json::Value* path = mod.find("path");
            if (type == nullptr || !type->is_string()) continue;
            if (type->as_string().ends_with("Normalize")) enc->normalize_ = true;
            if (!type->as_string().ends_with("Pooling")) continue;
            const std::string sub = (path != nullptr && path->is_string()) ? path->as_string() : "1_Pooling";
            QUIVER_ASSIGN_OR_RETURN(json::Value cfg, read_json((fs::path(dir) / sub / "config.json").string()));
            auto flag = [&](const char* key) {
                const json::Value* v = cfg.find(key);
                return v != nullptr && v->is_bool() && v->as_bool();
            };
            if (flag("pooling_mode_lasttoken")) {
                enc->last_token_ = true;
            } else if (flag("pooling_mode_mean_tokens")) {
                enc->last_token_ = false;
            } else {
                return unimplemented(fmt::format("'{}/{}/config.json': decoders support last-token and mean pooling", dir, sub));
            }
        }
    }
    if (fs::exists(join("sentence_bert_config.json"))) {
        QUIVER_ASSIGN_OR_RETURN(json::Value sb, read_json(join("sentence_bert_config.json")));
        if (const json::Value* m = sb.find("max_seq_length"); m != nullptr && m->is_integer() && m->as_int() > 0) {
            st_max = static_cast<std::size_t>(m->as_int());
        }
    }
    if (fs::exists(join("config_sentence_transformers.json"))) {
        QUIVER_ASSIGN_OR_RETURN(json::Value stc, read_json(join("config_sentence_transformers.json")));
        if (const json::Value* prompts = stc.find("prompts"); prompts != nullptr && prompts->is_object()) {
            for (const auto& [name, value] : prompts->as_object()) {
                if (!value.is_string()) continue;
                if (name == "query") enc->query_prefix_ = value.as_string();
                if (name == "document" || name == "passage" || name == "corpus") enc->document_prefix_ = value.as_string();
            }
        }
    }
    if (options.query_prefix) enc->query_prefix_ = *options.query_prefix;
    if (options.document_prefix) enc->document_prefix_ = *options.document_prefix;
    enc->max_length_ = std::min({options.max_length, config.max_length(), st_max});
    if (enc->max_length_ < 1) return invalid_argument("max_length must be at least 1");
    EncoderInfo& info = enc->info_;
    info.name = fs::path(dir).filename().string();
    if (info.name.empty()) info.name = fs::path(dir).parent_path().filename().string();
    info.family = config.model_type;
    info.dim = config.hidden;
    info.outputs = {OutputKind::kDense};
    info.normalized = enc->normalize_;
    info.metric = enc->normalize_ ? simd::Metric::kCosine : simd::Metric::kInnerProduct;
    info.max_length = enc->max_length_;
    enc->pool_ = std::make_unique<ThreadPool>(resolve_threads(options.threads));
    enc->workspaces_.resize(enc->pool_->size());
    return enc;
}

Result<Embeddings> DecoderEncoder::encode(std::span<const std::string_view> texts, const EncodeOptions& options) {
    if (options.kind != OutputKind::kDense) {
        return invalid_argument(fmt::format("model '{}' does not produce {} output", info_.name, to_string(options.kind)));
    }
    const std::size_t n = texts.size();
    const std::string& prefix = options.role == EncodeRole::kQuery ? query_prefix_ : document_prefix_;
    std::vector<std::vector<std::int32_t>> ids(n);
    std::vector<std::optional<Error>> errors(n);
    pool_->parallel_for(n, [&](std::size_t i, std::size_t) {
        auto r = prefix.empty() ? tokenizer_.encode(texts[i], max_length_)
                                : tokenizer_.encode(prefix + std::string(texts[i]), max_length_);
        if (!r) {
            errors[i] = std::move(r).error();
            return;
        }
        ids[i] = std::move(*r);
    }, 16);
    for (std::size_t i = 0; i < n; ++i) {
        if (errors[i]) return std::move(*errors[i]).with_context(fmt::format("text {}", i));
        if (ids[i].empty()) return invalid_argument(fmt::format("text {} has no tokens (decoders pool real tokens)", i));
    }
    Embeddings out;
    out.kind = OutputKind::kDense;
    out.dense = Matrix<float>(n, info_.dim);
    for (const auto& t : ids) out.num_tokens += t.size();
    if (n == 0) return out;
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ids[a].size() > ids[b].size(); });
    const std::size_t batch = std::max<std::size_t>(1, options_.batch);
    const std::size_t num_batches = (n + batch - 1) / batch;
    const bool one_batch = num_batches == 1 && pool_->size() > 1;
    const std::size_t H = info_.dim;
    auto run_batch = [&](std::size_t bi, std::size_t worker) {
        const std::size_t begin = bi * batch, end = std::min(n, begin + batch);
        std::vector<BertSequence> seqs;
        for (std::size_t j = begin; j < end; ++j) seqs.push_back({ids[order[j]].data(), ids[order[j]].size(), ids[order[j]].size()});
        DecoderWorkspace& ws = workspaces_[worker];
        model_.forward(seqs, ws, one_batch ? pool_.get() : nullptr);
        for (std::size_t j = begin; j < end; ++j) {
            const std::size_t t = order[j];
            const std::size_t len = ids[t].size();
            const float* rows = ws.x.data() + ws.offsets[j - begin] * H;
            float* dst = out.dense.row_ptr(t);
            if (last_token_) {
                std::copy(rows + (len - 1) * H, rows + len * H, dst);
            } else {
                std::fill(dst, dst + H, 0.0f);
                for (std::size_t r = 0; r < len; ++r) {
                    for (std::size_t c = 0; c < H; ++c) dst[c] += rows[r * H + c];
                }
                for (std::size_t c = 0; c < H; ++c) dst[c] /= static_cast<float>(len);
            }
            if (normalize_) simd::normalize(dst, H);
        }
        if (options.progress != nullptr) options.progress->add(end - begin);
    };
    if (one_batch) {
        run_batch(0, 0);
    } else {
        pool_->parallel_for(num_batches, run_batch, 1);
    }
    return out;
}

std::string_view DecoderEncoder::term(std::uint32_t id) const noexcept {
    return tokenizer_.id_to_token(static_cast<std::int32_t>(id));
}

}  // namespace quiver::encode::detail
