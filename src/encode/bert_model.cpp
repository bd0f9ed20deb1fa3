#include "encode/bert_model.h"

#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "encode/bert_kernels.h"
#include "quiver/core/json.h"

namespace quiver::encode::detail {

namespace {

Result<std::size_t> get_size(const json::Value& doc, std::string_view key, const std::string& path,
                             std::optional<std::size_t> fallback = std::nullopt) {
    const json::Value* v = doc.find(key);
    if (v == nullptr) {
        if (fallback) return *fallback;
        return invalid_argument(fmt::format("'{}' has no '{}'", path, key));
    }
    if (!v->is_integer() || v->as_int() <= 0) {
        return invalid_argument(fmt::format("'{}': '{}' must be a positive integer", path, key));
    }
    return static_cast<std::size_t>(v->as_int());
}

void ensure(std::vector<float>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
}

}  // namespace

Result<BertConfig> BertConfig::parse(std::string_view json_text, const std::string& path) {
    auto doc = json::parse(json_text);
    if (!doc) return std::move(doc).error().with_context(fmt::format("parsing '{}'", path));
    if (!doc->is_object()) return invalid_argument(fmt::format("'{}' is not a JSON object", path));
    BertConfig c;
    if (const json::Value* mt = doc->find("model_type"); mt != nullptr && mt->is_string()) {
        const std::string& t = mt->as_string();
        if (t != "bert") {
            return unimplemented(fmt::format("'{}': model_type '{}' (this runtime reads BERT-family models, "
                                             "model_type 'bert')", path, t));
        }
    }
    if (const json::Value* act = doc->find("hidden_act"); act != nullptr) {
        if (!act->is_string() || act->as_string() != "gelu") {
            return unimplemented(fmt::format("'{}': hidden_act '{}' (only 'gelu' is supported)", path,
                                             act->is_string() ? act->as_string() : std::string("?")));
        }
    }
    if (const json::Value* pe = doc->find("position_embedding_type"); pe != nullptr && pe->is_string() &&
                                                                      pe->as_string() != "absolute") {
        return unimplemented(fmt::format("'{}': position_embedding_type '{}'", path, pe->as_string()));
    }
    QUIVER_ASSIGN_OR_RETURN(c.vocab_size, get_size(*doc, "vocab_size", path));
    QUIVER_ASSIGN_OR_RETURN(c.hidden, get_size(*doc, "hidden_size", path));
    QUIVER_ASSIGN_OR_RETURN(c.layers, get_size(*doc, "num_hidden_layers", path));
    QUIVER_ASSIGN_OR_RETURN(c.heads, get_size(*doc, "num_attention_heads", path));
    QUIVER_ASSIGN_OR_RETURN(c.intermediate, get_size(*doc, "intermediate_size", path));
    QUIVER_ASSIGN_OR_RETURN(c.max_position, get_size(*doc, "max_position_embeddings", path));
    QUIVER_ASSIGN_OR_RETURN(c.type_vocab, get_size(*doc, "type_vocab_size", path, std::size_t{2}));
    if (c.hidden % c.heads != 0) {
        return invalid_argument(fmt::format("'{}': hidden_size {} is not a multiple of num_attention_heads {}", path,
                                            c.hidden, c.heads));
    }
    if (const json::Value* eps = doc->find("layer_norm_eps"); eps != nullptr && eps->is_number()) {
        c.layer_norm_eps = static_cast<float>(eps->as_number());
    }
    if (const json::Value* arch = doc->find("architectures"); arch != nullptr && arch->is_array()) {
        for (const auto& a : arch->as_array()) {
            if (a.is_string()) c.architectures.push_back(a.as_string());
        }
    }
    return c;
}

Result<BertModel> BertModel::load(const SafeTensors& st, const BertConfig& config, bool with_mlm_head) {
    BertModel m;
    m.config_ = config;
    if (st.contains("bert.embeddings.word_embeddings.weight")) {
        m.prefix_ = "bert.";
    } else if (!st.contains("embeddings.word_embeddings.weight")) {
        return not_found(fmt::format("'{}' has no BERT embeddings (neither 'embeddings.word_embeddings.weight' nor "
                                     "'bert.embeddings.word_embeddings.weight')", st.path()));
    }
    const std::size_t H = config.hidden;
    const std::size_t I = config.intermediate;
    const std::size_t V = config.vocab_size;
    const std::string& p = m.prefix_;
    auto load = [&](const std::string& name, std::vector<std::size_t> shape) {
        return st.to_float(p + name, shape);
    };
    QUIVER_ASSIGN_OR_RETURN(m.word_, load("embeddings.word_embeddings.weight", {V, H}));
    QUIVER_ASSIGN_OR_RETURN(m.position_, load("embeddings.position_embeddings.weight", {config.max_position, H}));
    QUIVER_ASSIGN_OR_RETURN(auto types, load("embeddings.token_type_embeddings.weight", {config.type_vocab, H}));
    m.type0_.assign(types.begin(), types.begin() + static_cast<std::ptrdiff_t>(H));
    QUIVER_ASSIGN_OR_RETURN(m.emb_ln_g_, load("embeddings.LayerNorm.weight", {H}));
    QUIVER_ASSIGN_OR_RETURN(m.emb_ln_b_, load("embeddings.LayerNorm.bias", {H}));
    for (std::size_t l = 0; l < config.layers; ++l) {
        const std::string lp = fmt::format("encoder.layer.{}.", l);
        BertLayer L;
        L.wqkv.reserve(3 * H * H);
        L.bqkv.reserve(3 * H);
        for (const char* n : {"query", "key", "value"}) {
            QUIVER_ASSIGN_OR_RETURN(auto w, load(lp + "attention.self." + n + ".weight", {H, H}));
            QUIVER_ASSIGN_OR_RETURN(auto b, load(lp + "attention.self." + n + ".bias", {H}));
            L.wqkv.insert(L.wqkv.end(), w.begin(), w.end());
            L.bqkv.insert(L.bqkv.end(), b.begin(), b.end());
        }
        QUIVER_ASSIGN_OR_RETURN(L.wo, load(lp + "attention.output.dense.weight", {H, H}));
        QUIVER_ASSIGN_OR_RETURN(L.bo, load(lp + "attention.output.dense.bias", {H}));
        QUIVER_ASSIGN_OR_RETURN(L.ln1_g, load(lp + "attention.output.LayerNorm.weight", {H}));
        QUIVER_ASSIGN_OR_RETURN(L.ln1_b, load(lp + "attention.output.LayerNorm.bias", {H}));
        QUIVER_ASSIGN_OR_RETURN(L.w1, load(lp + "intermediate.dense.weight", {I, H}));
        QUIVER_ASSIGN_OR_RETURN(L.b1, load(lp + "intermediate.dense.bias", {I}));
        QUIVER_ASSIGN_OR_RETURN(L.w2, load(lp + "output.dense.weight", {H, I}));
        QUIVER_ASSIGN_OR_RETURN(L.b2, load(lp + "output.dense.bias", {H}));
        QUIVER_ASSIGN_OR_RETURN(L.ln2_g, load(lp + "output.LayerNorm.weight", {H}));
        QUIVER_ASSIGN_OR_RETURN(L.ln2_b, load(lp + "output.LayerNorm.bias", {H}));
        m.layers_.push_back(std::move(L));
    }
    const std::string next_layer = fmt::format("{}encoder.layer.{}.attention.self.query.weight", p, config.layers);
    if (st.contains(next_layer)) {
        return invalid_argument(fmt::format("'{}' has more layers than num_hidden_layers = {} in config.json",
                                            st.path(), config.layers));
    }
    if (with_mlm_head) {
        const std::string h = "cls.predictions.";
        QUIVER_ASSIGN_OR_RETURN(m.mlm_.dense_w, st.to_float(h + "transform.dense.weight", {H, H}));
        QUIVER_ASSIGN_OR_RETURN(m.mlm_.dense_b, st.to_float(h + "transform.dense.bias", {H}));
        QUIVER_ASSIGN_OR_RETURN(m.mlm_.ln_g, st.to_float(h + "transform.LayerNorm.weight", {H}));
        QUIVER_ASSIGN_OR_RETURN(m.mlm_.ln_b, st.to_float(h + "transform.LayerNorm.bias", {H}));
        if (st.contains(h + "decoder.weight")) {
            QUIVER_ASSIGN_OR_RETURN(m.mlm_.decoder_w, st.to_float(h + "decoder.weight", {V, H}));
        } else {
            m.mlm_.decoder_w = m.word_;  // tied to the input embeddings; Hugging Face omits the copy
        }
        if (st.contains(h + "decoder.bias")) {
            QUIVER_ASSIGN_OR_RETURN(m.mlm_.decoder_b, st.to_float(h + "decoder.bias", {V}));
        } else if (st.contains(h + "bias")) {
            QUIVER_ASSIGN_OR_RETURN(m.mlm_.decoder_b, st.to_float(h + "bias", {V}));
        } else {
            m.mlm_.decoder_b.assign(V, 0.0f);
        }
    }
    return m;
}

void BertModel::forward(std::span<const BertSequence> seqs, BertWorkspace& ws) const {
    const BertKernels& k = bert_kernels();
    const std::size_t H = config_.hidden;
    const std::size_t I = config_.intermediate;
    const std::size_t nh = config_.heads;
    const std::size_t d = H / nh;
    const float eps = config_.layer_norm_eps;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));

    ws.offsets.assign(seqs.size() + 1, 0);
    std::size_t max_len = 0;
    for (std::size_t b = 0; b < seqs.size(); ++b) {
        ws.offsets[b + 1] = ws.offsets[b] + seqs[b].length;
        max_len = std::max(max_len, seqs[b].length);
    }
    const std::size_t T = ws.offsets.back();
    if (T == 0) return;
    ensure(ws.x, T * H);
    ensure(ws.qkv, T * 3 * H);
    ensure(ws.ctx, T * H);
    ensure(ws.tmp, T * H);
    ensure(ws.inter, T * I);
    ensure(ws.scores, max_len * max_len);
    float* x = ws.x.data();

    // Embeddings: word + position + token type 0, then LayerNorm.
    for (std::size_t b = 0; b < seqs.size(); ++b) {
        for (std::size_t j = 0; j < seqs[b].length; ++j) {
            float* row = x + (ws.offsets[b] + j) * H;
            const float* w = word_.data() + static_cast<std::size_t>(seqs[b].ids[j]) * H;
            const float* pos = position_.data() + j * H;
            for (std::size_t c = 0; c < H; ++c) row[c] = w[c] + pos[c] + type0_[c];
        }
    }
    k.layernorm(x, emb_ln_g_.data(), emb_ln_b_.data(), T, H, eps);

    const auto iT = static_cast<blasint>(T);
    const auto iH = static_cast<blasint>(H);
    const auto iI = static_cast<blasint>(I);
    // Biases (and residuals) are written into the product's output first and the product accumulates
    // onto them (beta = 1): no separate bias pass, and OpenBLAS skips zeroing C.
    auto fill_bias = [](float* dst, const float* bias, std::size_t rows, std::size_t cols) {
        for (std::size_t r = 0; r < rows; ++r) std::memcpy(dst + r * cols, bias, cols * sizeof(float));
    };
    auto residual_plus_bias = [](float* dst, const float* src, const float* bias, std::size_t rows, std::size_t cols) {
        for (std::size_t r = 0; r < rows; ++r) {
            for (std::size_t c = 0; c < cols; ++c) dst[r * cols + c] = src[r * cols + c] + bias[c];
        }
    };
    for (const BertLayer& L : layers_) {
        float* qkv = ws.qkv.data();
        fill_bias(qkv, L.bqkv.data(), T, 3 * H);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, iT, 3 * iH, iH, 1.0f, x, iH, L.wqkv.data(), iH, 1.0f,
                    qkv, 3 * iH);
        for (std::size_t b = 0; b < seqs.size(); ++b) {
            const std::size_t n = seqs[b].length;
            const std::size_t a = seqs[b].attend;
            if (n == 0) continue;
            const float* base = qkv + ws.offsets[b] * 3 * H;
            float* out = ws.ctx.data() + ws.offsets[b] * H;
            float* s = ws.scores.data();
            for (std::size_t h = 0; h < nh; ++h) {
                const float* q = base + h * d;
                const float* kk = base + H + h * d;
                const float* v = base + 2 * H + h * d;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(a),
                            static_cast<blasint>(d), scale, q, 3 * iH, kk, 3 * iH, 0.0f, s, static_cast<blasint>(a));
                k.softmax(s, n, a, a);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(d),
                            static_cast<blasint>(a), 1.0f, s, static_cast<blasint>(a), v, 3 * iH, 0.0f, out + h * d, iH);
            }
        }
        // x <- LayerNorm(x + ctx Wo^T + bo), computed in tmp, then the buffers swap.
        residual_plus_bias(ws.tmp.data(), x, L.bo.data(), T, H);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, iT, iH, iH, 1.0f, ws.ctx.data(), iH, L.wo.data(), iH, 1.0f,
                    ws.tmp.data(), iH);
        k.layernorm(ws.tmp.data(), L.ln1_g.data(), L.ln1_b.data(), T, H, eps);
        std::swap(ws.x, ws.tmp);
        x = ws.x.data();
        fill_bias(ws.inter.data(), L.b1.data(), T, I);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, iT, iI, iH, 1.0f, x, iH, L.w1.data(), iH, 1.0f,
                    ws.inter.data(), iI);
        k.bias_gelu(ws.inter.data(), nullptr, T, I);
        residual_plus_bias(ws.tmp.data(), x, L.b2.data(), T, H);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, iT, iH, iI, 1.0f, ws.inter.data(), iI, L.w2.data(), iI,
                    1.0f, ws.tmp.data(), iH);
        k.layernorm(ws.tmp.data(), L.ln2_g.data(), L.ln2_b.data(), T, H, eps);
        std::swap(ws.x, ws.tmp);
        x = ws.x.data();
    }
}

void BertModel::splade_max(const float* hidden_rows, std::size_t rows, BertWorkspace& ws, float* out) const {
    const BertKernels& k = bert_kernels();
    const std::size_t H = config_.hidden;
    const std::size_t V = config_.vocab_size;
    constexpr std::size_t kChunk = 64;  // rows of logits live at once: 64 x V floats
    ensure(ws.tmp, kChunk * H);
    ensure(ws.logits, kChunk * V);
    std::fill(out, out + V, -INFINITY);
    for (std::size_t r0 = 0; r0 < rows; r0 += kChunk) {
        const std::size_t n = std::min(kChunk, rows - r0);
        float* t = ws.tmp.data();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(H),
                    static_cast<blasint>(H), 1.0f, hidden_rows + r0 * H, static_cast<blasint>(H), mlm_.dense_w.data(),
                    static_cast<blasint>(H), 0.0f, t, static_cast<blasint>(H));
        k.bias_gelu(t, mlm_.dense_b.data(), n, H);
        k.layernorm(t, mlm_.ln_g.data(), mlm_.ln_b.data(), n, H, config_.layer_norm_eps);
        float* lg = ws.logits.data();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(V),
                    static_cast<blasint>(H), 1.0f, t, static_cast<blasint>(H), mlm_.decoder_w.data(),
                    static_cast<blasint>(H), 0.0f, lg, static_cast<blasint>(V));
        for (std::size_t r = 0; r < n; ++r) {
            const float* row = lg + r * V;
            for (std::size_t v = 0; v < V; ++v) out[v] = std::max(out[v], row[v]);
        }
    }
    // log(1 + relu(.)) is monotonic, so it commutes with the max; apply it once per term.
    for (std::size_t v = 0; v < V; ++v) {
        const float z = out[v] + mlm_.decoder_b[v];
        out[v] = z > 0.0f ? std::log1p(z) : 0.0f;
    }
}

}  // namespace quiver::encode::detail
