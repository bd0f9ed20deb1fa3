// Private to encode/: decoder-only embedders (Qwen2, Mistral, Llama layouts: the seeds' Mistral/Qwen
// retrievers such as e5-mistral, gte-Qwen2, Qwen3-style embedders in Hugging Face form).
//
// Forward pass per layer: h = x + o_proj(attn(rope(q), rope(k), v)) over RMSNorm(x), causal, with
// grouped-query attention (num_key_value_heads <= num_attention_heads, query head h reads key/value
// head h / (heads / kv_heads)); then x = h + down(silu(gate(n)) * up(n)) with n = RMSNorm(h); a final
// RMSNorm. RoPE as Hugging Face's rotate_half: for i < d/2, angle = pos * theta^(-2i/d), x[i] and
// x[i + d/2] rotate together. Sequences are packed without padding (as in bert_model.h), so the
// padding side of the original tokenizer does not matter; q/k/v biases are used when present (Qwen2).
//
// Thread-safety: a loaded model is immutable; forward() may run concurrently with distinct workspaces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "encode/bert_model.h"
#include "encode/linear.h"
#include "quiver/core/thread_pool.h"
#include "quiver/encode/encoder.h"
#include "quiver/encode/safetensors.h"
#include "quiver/text/wordpiece.h"

namespace quiver::encode::detail {

struct DecoderConfig {
    std::string model_type;
    std::size_t vocab_size = 0;
    std::size_t hidden = 0;
    std::size_t layers = 0;
    std::size_t heads = 0;
    std::size_t kv_heads = 0;
    std::size_t head_dim = 0;
    std::size_t intermediate = 0;
    std::size_t max_position = 0;
    float rms_norm_eps = 1e-6f;
    double rope_theta = 10000.0;

    /// True for model_type qwen2 / qwen3 / mistral / llama.
    static bool is_decoder(std::string_view model_type) noexcept;
    static Result<DecoderConfig> parse(std::string_view json_text, const std::string& path);
};

struct DecoderLayer {
    std::vector<float> ln1, ln2;  // RMSNorm weights [H]
    Linear qkv;                   // [(heads + 2 kv_heads) head_dim, H]
    std::vector<float> bqkv;      // empty without biases
    Linear o;                     // [H, heads head_dim]
    Linear gate_up;               // [2I, H] (gate rows, then up rows)
    Linear down;                  // [H, I]
};

struct DecoderWorkspace {
    std::vector<float> x, h, qkv, ctx, gu, inter;
    std::vector<std::size_t> offsets;
    std::vector<AttentionScratch> attention;
    LinearScratch linear;
};

class DecoderModel {
public:
    /// Weights under `model.` (…ForCausalLM) or without a prefix (…Model, as sentence-transformers saves).
    static Result<DecoderModel> load(const SafeTensors& st, const DecoderConfig& config, bool int8);
    const DecoderConfig& config() const noexcept { return config_; }
    /// Final (normed) hidden states in ws.x, sequence b from row ws.offsets[b]; every sequence attends
    /// causally to itself (BertSequence::attend is ignored). Ids in range, lengths <= max_position.
    void forward(std::span<const BertSequence> seqs, DecoderWorkspace& ws, ThreadPool* team = nullptr) const;

private:
    DecoderConfig config_;
    std::vector<float> embed_, norm_;
    std::vector<float> inv_freq_;  // [head_dim / 2]
    std::vector<DecoderLayer> layers_;
};

/// The Encoder over a DecoderModel: tokenizer.json, sentence-transformers pooling (last token or
/// mean; Pooling config `pooling_mode_lasttoken`), Normalize, prompts (instruction prefixes, e.g.
/// "Instruct: ...\nQuery: "), max_seq_length. Dense output only.
class DecoderEncoder final : public Encoder {
public:
    static Result<std::unique_ptr<DecoderEncoder>> load(const std::string& dir, const LoadOptions& options);
    const EncoderInfo& info() const noexcept override { return info_; }
    Result<Embeddings> encode(std::span<const std::string_view> texts, const EncodeOptions& options) override;
    std::string_view term(std::uint32_t id) const noexcept override;

private:
    DecoderEncoder() = default;
    LoadOptions options_;
    EncoderInfo info_;
    text::HfTokenizer tokenizer_;
    DecoderModel model_;
    std::size_t max_length_ = 512;
    bool last_token_ = true;
    bool normalize_ = false;
    std::string query_prefix_, document_prefix_;
    std::unique_ptr<ThreadPool> pool_;
    std::vector<DecoderWorkspace> workspaces_;
};

}  // namespace quiver::encode::detail
