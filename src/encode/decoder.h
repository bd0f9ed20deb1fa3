// Private to encode/: decoder-only embedders (Qwen2, Mistral, Llama layouts: the seeds' Mistral/Qwen
// retrievers such as e5-mistral, gte-Qwen2, Qwen3-style embedders in Hugging Face form).
//
// Forward pass per layer: h = x + o_proj(attn(rope(q), rope(k), v)) over RMSNorm(x), causal, with
// grouped-query attention (num_key_value_heads <= num_attention_heads, query head h reads key/value
// head h / (heads / kv_heads)); then x = h + down(silu(gate(n)) * up(n)) with n = RMSNorm(h); a final
// RMSNorm. RoPE as Hugging Face's rotate_half: for i < d/2, angle = pos * inv_freq[i], x[i] and
// x[i + d/2] rotate together, cos and sin times the attention factor. Sequences are packed without
// padding (as in bert_model.h), so the padding side of the original tokenizer does not matter; q/k/v
// biases are used when present (Qwen2). Qwen3 adds a per-head RMSNorm of q and k (q_norm, k_norm over
// head_dim) before RoPE.
//
// RoPE frequencies follow Hugging Face's `rope_scaling` (or `rope_parameters`) types, with
// inv_freq[i] = theta^(-2i/d):
//   - linear: inv_freq / factor;
//   - dynamic (NTK): theta * (factor L / max_position - (factor - 1))^(d / (d - 2)) as the base, with
//     L = max(sequence length, max_position_embeddings), per sequence (as the library computes it for
//     a batch of one on a fresh model; its cache of the longest length seen so far is not modelled);
//     sequences may be longer than max_position_embeddings;
//   - llama3: wavelengths 2 pi / inv_freq above original_max / low_freq_factor divided by factor,
//     below original_max / high_freq_factor kept, smoothly interpolated between;
//   - yarn: inv_freq / factor blended with inv_freq by a linear ramp over the dimensions between the
//     correction dimensions of beta_fast and beta_slow (floored / ceiled unless truncate is false) for
//     original_max_position_embeddings (default max_position_embeddings); attention factor
//     attention_factor, else mscale(factor, mscale) / mscale(factor, mscale_all_dim) when both are set,
//     else 0.1 ln(factor) + 1. `factor` is the configured one (transformers >= 4.56; 4.51-4.55 replaced
//     it by max_position_embeddings / original_max_position_embeddings when the latter is given).
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
    bool qk_norm = false;  ///< Qwen3: q_norm / k_norm per head

    enum class Rope : std::uint8_t { kDefault, kLinear, kDynamic, kYarn, kLlama3 };
    Rope rope = Rope::kDefault;
    double rope_factor = 1.0;
    double rope_original_max = 0.0;  ///< original_max_position_embeddings (llama3, yarn); 0 = unset
    double rope_low_freq = 1.0;      ///< llama3 low_freq_factor
    double rope_high_freq = 4.0;     ///< llama3 high_freq_factor
    double yarn_beta_fast = 32.0;
    double yarn_beta_slow = 1.0;
    bool yarn_truncate = true;
    double rope_attention = 1.0;     ///< cos/sin factor (yarn)

    /// True for model_type qwen2 / qwen3 / mistral / llama.
    static bool is_decoder(std::string_view model_type) noexcept;
    static Result<DecoderConfig> parse(std::string_view json_text, const std::string& path);
    /// RoPE inverse frequencies [head_dim / 2] for a sequence of `length` tokens (only `dynamic` depends
    /// on it); returns the attention factor.
    double rope_frequencies(std::size_t length, std::vector<float>& inv_freq) const;
    /// The longest sequence the model takes: max_position_embeddings, unbounded with dynamic RoPE.
    std::size_t max_length() const noexcept {
        return rope == Rope::kDynamic ? std::numeric_limits<std::size_t>::max() : max_position;
    }
};

struct DecoderLayer {
    std::vector<float> ln1, ln2;  // RMSNorm weights [H]
    Linear qkv;                   // [(heads + 2 kv_heads) head_dim, H]
    std::vector<float> bqkv;      // empty without biases
    std::vector<float> q_norm, k_norm;  // [head_dim], Qwen3 only
    Linear o;                     // [H, heads head_dim]
    Linear gate_up;               // [2I, H] (gate rows, then up rows)
    Linear down;                  // [H, I]
};

struct DecoderWorkspace {
    std::vector<float> x, h, qkv, ctx, gu, inter;
    std::vector<float> inv_freq, cos, sin;  // RoPE of one sequence: [head_dim / 2], [length, head_dim / 2]
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
    /// causally to itself (BertSequence::attend is ignored). Ids in range, lengths <= config().max_length().
    void forward(std::span<const BertSequence> seqs, DecoderWorkspace& ws, ThreadPool* team = nullptr) const;

private:
    DecoderConfig config_;
    std::vector<float> embed_, norm_;
    std::vector<float> inv_freq_;  // [head_dim / 2], for sequences up to max_position_embeddings
    double rope_attention_ = 1.0;
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
