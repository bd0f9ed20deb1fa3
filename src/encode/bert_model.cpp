#include "encode/bert_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "encode/bert_kernels.h"
#include "quiver/core/json.h"
#include "quiver/core/thread_pool.h"

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

// Row stride of a rows x n activation matrix: n, plus 16 floats when n floats are a multiple of 2 KiB
// (MiniLM's 1536): the micro-kernel reads 12 rows at once, and rows 2 KiB apart share a few L1 sets.
std::size_t activation_stride(std::size_t n) { return (n * sizeof(float)) % 2048 == 0 ? n + 16 : n; }

}  // namespace

Result<BertConfig> BertConfig::parse(std::string_view json_text, const std::string& path) {
    auto doc = json::parse(json_text);
    if (!doc) return std::move(doc).error().with_context(fmt::format("parsing '{}'", path));
    if (!doc->is_object()) return invalid_argument(fmt::format("'{}' is not a JSON object", path));
    BertConfig c;
    if (const json::Value* mt = doc->find("model_type"); mt != nullptr && mt->is_string()) {
        const std::string& t = mt->as_string();
        if (t != "bert" && t != "roberta" && t != "xlm-roberta") {
            return unimplemented(fmt::format("'{}': model_type '{}' (this runtime reads BERT-family models: "
                                             "'bert', 'roberta', 'xlm-roberta'; decoders: 'qwen2', 'mistral', 'llama')",
                                             path, t));
        }
        c.model_type = t;
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
    if (c.model_type != "bert") {
        // RoBERTa's positions are padding_idx + 1 + j (create_position_ids_from_input_ids).
        std::size_t pad = 1;
        if (const json::Value* v = doc->find("pad_token_id"); v != nullptr && v->is_integer() && v->as_int() >= 0) {
            pad = static_cast<std::size_t>(v->as_int());
        }
        c.position_offset = pad + 1;
        if (c.position_offset + 1 >= c.max_position) {
            return invalid_argument(fmt::format("'{}': max_position_embeddings {} leaves no positions after "
                                                "pad_token_id {}", path, c.max_position, pad));
        }
    }
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

Result<BertModel> BertModel::load(const SafeTensors& st, const BertConfig& config, bool with_mlm_head, bool int8) {
    BertModel m;
    m.config_ = config;
    const std::string family = config.model_type == "bert" ? "bert." : "roberta.";
    if (st.contains(family + "embeddings.word_embeddings.weight")) {
        m.prefix_ = family;
    } else if (!st.contains("embeddings.word_embeddings.weight")) {
        return not_found(fmt::format("'{}' has no {} embeddings (neither 'embeddings.word_embeddings.weight' nor "
                                     "'{}embeddings.word_embeddings.weight')", st.path(), config.model_type, family));
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
        std::vector<float> wqkv;
        wqkv.reserve(3 * H * H);
        L.bqkv.reserve(3 * H);
        for (const char* n : {"query", "key", "value"}) {
            QUIVER_ASSIGN_OR_RETURN(auto w, load(lp + "attention.self." + n + ".weight", {H, H}));
            QUIVER_ASSIGN_OR_RETURN(auto b, load(lp + "attention.self." + n + ".bias", {H}));
            wqkv.insert(wqkv.end(), w.begin(), w.end());
            L.bqkv.insert(L.bqkv.end(), b.begin(), b.end());
        }
        L.qkv = Linear(wqkv.data(), 3 * H, H, int8);
        QUIVER_ASSIGN_OR_RETURN(auto wo, load(lp + "attention.output.dense.weight", {H, H}));
        L.wo = Linear(wo.data(), H, H, int8);
        QUIVER_ASSIGN_OR_RETURN(L.bo, load(lp + "attention.output.dense.bias", {H}));
        QUIVER_ASSIGN_OR_RETURN(L.ln1_g, load(lp + "attention.output.LayerNorm.weight", {H}));
        QUIVER_ASSIGN_OR_RETURN(L.ln1_b, load(lp + "attention.output.LayerNorm.bias", {H}));
        QUIVER_ASSIGN_OR_RETURN(auto w1, load(lp + "intermediate.dense.weight", {I, H}));
        L.w1 = Linear(w1.data(), I, H, int8);
        QUIVER_ASSIGN_OR_RETURN(L.b1, load(lp + "intermediate.dense.bias", {I}));
        QUIVER_ASSIGN_OR_RETURN(auto w2, load(lp + "output.dense.weight", {H, I}));
        L.w2 = Linear(w2.data(), H, I, int8);
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
        QUIVER_ASSIGN_OR_RETURN(auto dense_w, st.to_float(h + "transform.dense.weight", {H, H}));
        m.mlm_.dense = Linear(dense_w.data(), H, H, int8);
        QUIVER_ASSIGN_OR_RETURN(m.mlm_.dense_b, st.to_float(h + "transform.dense.bias", {H}));
        QUIVER_ASSIGN_OR_RETURN(m.mlm_.ln_g, st.to_float(h + "transform.LayerNorm.weight", {H}));
        QUIVER_ASSIGN_OR_RETURN(m.mlm_.ln_b, st.to_float(h + "transform.LayerNorm.bias", {H}));
        if (st.contains(h + "decoder.weight")) {
            QUIVER_ASSIGN_OR_RETURN(auto dec, st.to_float(h + "decoder.weight", {V, H}));
            m.mlm_.decoder = Linear(dec.data(), V, H, int8);
        } else {
            m.mlm_.decoder = Linear(m.word_.data(), V, H, int8);  // tied to the input embeddings (HF omits the copy)
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

void BertModel::forward(std::span<const BertSequence> seqs, BertWorkspace& ws, ThreadPool* team) const {
    const BertKernels& k = bert_kernels();
    const std::size_t H = config_.hidden;
    const std::size_t I = config_.intermediate;
    const std::size_t nh = config_.heads;
    const std::size_t d = H / nh;
    const float eps = config_.layer_norm_eps;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const std::size_t threads = team != nullptr ? team->size() : 1;
    // A forward call is a burst of a few dozen short parallel steps: keep the team spinning between them.
    const ThreadPool::SpinScope spin(threads > 1 ? team : nullptr);

    ws.offsets.assign(seqs.size() + 1, 0);
    for (std::size_t b = 0; b < seqs.size(); ++b) ws.offsets[b + 1] = ws.offsets[b] + seqs[b].length;
    const std::size_t T = ws.offsets.back();
    if (T == 0) return;
    const std::size_t ldi = activation_stride(I);
    ensure(ws.x, T * H);
    if (ws.attention.size() < threads) ws.attention.resize(threads);
    float* x = ws.x.data();

    // Row-wise element work (LayerNorm) split over the team in blocks of rows; a query's few rows stay
    // on the caller (cheaper than a hand-over).
    auto rows_parallel = [&](std::size_t rows, const auto& fn) {
        if (threads <= 1 || rows < 64) {
            fn(std::size_t{0}, rows);
            return;
        }
        const std::size_t parts = std::min(threads, rows);
        team->parallel_for(parts, [&](std::size_t i, std::size_t) { fn(rows * i / parts, rows * (i + 1) / parts); });
    };

    // Embeddings: word + position + token type 0, then LayerNorm.
    const std::size_t pos0 = config_.position_offset;
    for (std::size_t b = 0; b < seqs.size(); ++b) {
        for (std::size_t j = 0; j < seqs[b].length; ++j) {
            float* row = x + (ws.offsets[b] + j) * H;
            const float* w = word_.data() + static_cast<std::size_t>(seqs[b].ids[j]) * H;
            const float* pos = position_.data() + (pos0 + j) * H;
            for (std::size_t c = 0; c < H; ++c) row[c] = w[c] + pos[c] + type0_[c];
        }
    }
    rows_parallel(T, [&](std::size_t r0, std::size_t r1) {
        k.layernorm(x + r0 * H, emb_ln_g_.data(), emb_ln_b_.data(), r1 - r0, H, eps);
    });

    // One (sequence, head) attention on the scratch of `worker`: pack K and V, S = scale Q K^T,
    // E = exp(S - rowmax) (softmax without its normalising pass), context = E V into ctx, then each
    // query's d context values times 1 / sum(E row) (d multiplies per query instead of n).
    // qkv and ctx hold rows from `row0` on.
    auto attend_head = [&](std::size_t b, std::size_t h, std::size_t worker, std::size_t row0, const float* qkv,
                           float* ctx) {
        const std::size_t n = seqs[b].length;
        const std::size_t a = seqs[b].attend;
        AttentionScratch& sc = ws.attention[worker];
        const float* base = qkv + (ws.offsets[b] - row0) * 3 * H;
        pack_rows(base + H + h * d, a, d, 3 * H, sc.keys);
        pack_cols(base + 2 * H + h * d, a, d, 3 * H, sc.values);
        ensure(sc.scores, n * a);
        GemmArgs qk;
        qk.a = base + h * d;
        qk.lda = 3 * H;
        qk.m = n;
        qk.c = sc.scores.data();
        qk.ldc = a;
        qk.alpha = scale;
        gemm(qk, sc.keys);
        ensure(sc.inv_sum, n);
        k.softmax_unscaled(sc.scores.data(), n, a, a, sc.inv_sum.data());
        GemmArgs pv;
        pv.a = sc.scores.data();
        pv.lda = a;
        pv.m = n;
        pv.c = ctx + (ws.offsets[b] - row0) * H + h * d;
        pv.ldc = H;
        gemm(pv, sc.values);
        for (std::size_t i = 0; i < n; ++i) {
            float* row = pv.c + i * H;
            const float inv = sc.inv_sum[i];
            for (std::size_t c = 0; c < d; ++c) row[c] *= inv;
        }
    };

    // With a team and few rows (a query), a head's query, key and value columns (whole panels when the
    // head width is a multiple of the panel width) are computed by the thread that then runs the head's
    // attention: one parallel step instead of two, and no hand-over of Q, K, V between threads.
    const bool by_head = threads > 1 && T <= 256 && d % kPanel == 0 && !layers_.empty() &&
                         !layers_[0].qkv.int8();

    // One thread runs sequences [s0, s1) with `gs`: each layer over groups of whole sequences of at most
    // kChunkRows rows (one sequence when longer), so a group's Q/K/V, context and intermediate
    // activations stay in L2 from the product that writes them to the step that reads them. (The weights
    // stream through once per group.)
    constexpr std::size_t kChunkRows = 256;
    auto run_sequences = [&](std::size_t s0, std::size_t s1, GroupScratch& gs, std::size_t worker) {
        std::size_t group_rows = 0;
        for (std::size_t b = s0; b < s1; ++b) group_rows = std::max(group_rows, seqs[b].length);
        group_rows = std::max(group_rows, std::min(kChunkRows, ws.offsets[s1] - ws.offsets[s0]));
        ensure(gs.qkv, group_rows * 3 * H);
        ensure(gs.ctx, group_rows * H);
        ensure(gs.inter, group_rows * ldi);
        for (const BertLayer& L : layers_) {
            for (std::size_t b0 = s0; b0 < s1;) {
                std::size_t b1 = b0 + 1;
                while (b1 < s1 && ws.offsets[b1 + 1] - ws.offsets[b0] <= kChunkRows) ++b1;
                const std::size_t r0 = ws.offsets[b0];
                const std::size_t rows = ws.offsets[b1] - r0;
                float* xc = x + r0 * H;
                L.qkv.apply(nullptr, xc, H, rows, gs.qkv.data(), 3 * H, L.bqkv.data(), false, gs.linear);
                for (std::size_t b = b0; b < b1; ++b) {
                    if (seqs[b].length == 0) continue;
                    for (std::size_t h = 0; h < nh; ++h) attend_head(b, h, worker, r0, gs.qkv.data(), gs.ctx.data());
                }
                L.wo.apply(nullptr, gs.ctx.data(), H, rows, xc, H, L.bo.data(), true, gs.linear);
                k.layernorm(xc, L.ln1_g.data(), L.ln1_b.data(), rows, H, eps);
                L.w1.apply(nullptr, xc, H, rows, gs.inter.data(), ldi, L.b1.data(), false, gs.linear, k.gelu);
                L.w2.apply(nullptr, gs.inter.data(), ldi, rows, xc, H, L.b2.data(), true, gs.linear);
                k.layernorm(xc, L.ln2_g.data(), L.ln2_b.data(), rows, H, eps);
                b0 = b1;
            }
        }
    };
    if (ws.groups.size() < threads) ws.groups.resize(threads);
    if (threads <= 1) {
        run_sequences(0, seqs.size(), ws.groups[0], 0);
        return;
    }

    // A team and a batch of many sequences (at least twice as many tokens per thread as its longest
    // sequence): sequence-parallel. Each thread runs a contiguous share of the sequences, balanced by
    // tokens, through every layer on its own (the one-thread path above): no steps shared between
    // threads, no hand-over of activations, each thread's activations stay in its own L2 while the
    // weights stream from L3. (A batch of 32 x 128 tokens ran about 15% faster than the layer-parallel
    // path below on a contended L3, session 7 notes.)
    std::size_t longest = 0;
    for (const BertSequence& sq : seqs) longest = std::max(longest, sq.length);
    if (!by_head && longest * threads * 2 <= T) {
        std::vector<std::size_t> cut(threads + 1, seqs.size());
        cut[0] = 0;
        for (std::size_t i = 1, b = 0; i < threads; ++i) {
            while (b < seqs.size() && ws.offsets[b] * threads < T * i) ++b;
            cut[i] = b;
        }
        team->parallel_for(threads, [&](std::size_t i, std::size_t worker) {
            if (cut[i] < cut[i + 1]) run_sequences(cut[i], cut[i + 1], ws.groups[i], worker);
        });
        return;
    }

    // Layer-parallel: every step of a layer over the whole batch, split over the team (by head for a
    // query's few rows, by output panels for the products).
    ensure(ws.qkv, T * 3 * H);
    ensure(ws.ctx, T * H);
    ensure(ws.inter, T * ldi);
    for (const BertLayer& L : layers_) {
        if (by_head) {
            team->parallel_for(nh, [&](std::size_t h, std::size_t worker) {
                GemmArgs g;
                g.a = x;
                g.lda = H;
                g.m = T;
                g.c = ws.qkv.data();
                g.ldc = 3 * H;
                g.bias = L.bqkv.data();
                for (std::size_t part = 0; part < 3; ++part) {  // query, key, value
                    const std::size_t p0 = (part * H + h * d) / kPanel;
                    gemm_stream(g, L.qkv.packed(), p0, p0 + d / kPanel);
                }
                for (std::size_t b = 0; b < seqs.size(); ++b) {
                    if (seqs[b].length != 0) attend_head(b, h, worker, 0, ws.qkv.data(), ws.ctx.data());
                }
            });
        } else {
            L.qkv.apply(team, x, H, T, ws.qkv.data(), 3 * H, L.bqkv.data(), false, ws.linear);
            team->parallel_for(seqs.size() * nh, [&](std::size_t i, std::size_t worker) {
                if (seqs[i / nh].length != 0) attend_head(i / nh, i % nh, worker, 0, ws.qkv.data(), ws.ctx.data());
            });
        }
        // x <- LayerNorm(x + ctx Wo^T + bo): the product accumulates onto x in place (no copy).
        L.wo.apply(team, ws.ctx.data(), H, T, x, H, L.bo.data(), true, ws.linear);
        rows_parallel(T, [&](std::size_t r0, std::size_t r1) {
            k.layernorm(x + r0 * H, L.ln1_g.data(), L.ln1_b.data(), r1 - r0, H, eps);
        });
        // GELU runs on each finished block of the product while it is in L1 (no pass of its own).
        L.w1.apply(team, x, H, T, ws.inter.data(), ldi, L.b1.data(), false, ws.linear, k.gelu);
        L.w2.apply(team, ws.inter.data(), ldi, T, x, H, L.b2.data(), true, ws.linear);
        rows_parallel(T, [&](std::size_t r0, std::size_t r1) {
            k.layernorm(x + r0 * H, L.ln2_g.data(), L.ln2_b.data(), r1 - r0, H, eps);
        });
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
        mlm_.dense.apply(nullptr, hidden_rows + r0 * H, H, n, t, H, nullptr, false, ws.linear);
        k.bias_gelu(t, mlm_.dense_b.data(), n, H);
        k.layernorm(t, mlm_.ln_g.data(), mlm_.ln_b.data(), n, H, config_.layer_norm_eps);
        float* lg = ws.logits.data();
        mlm_.decoder.apply(nullptr, t, H, n, lg, V, nullptr, false, ws.linear);
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
