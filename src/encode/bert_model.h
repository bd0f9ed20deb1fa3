// Private to encode/: BERT-family weights (BERT, RoBERTa / XLM-RoBERTa) and the forward pass.
//
// Sequences are packed without padding: a batch of sequences of lengths n_0..n_{B-1} is one
// (sum n_b) x hidden matrix, so every projection is one product over all tokens of the batch and no
// work is spent on padding. Weights are packed once at load (gemm.h; optionally int8, linear.h).
// Attention runs per sequence and head: the head's keys and values are packed, then
// scores = Q K^T (one gemm), softmax over the sequence's first `attend` positions (its keys), and
// Q-rows x V (one gemm). Queries beyond `attend` (ColBERT's [MASK] padding) still attend to those
// keys, like an attention mask with zeros at the end.
//
// Thread-safety: a loaded model is immutable; `forward` may run concurrently with distinct
// Workspaces. With a `team` (a ThreadPool not otherwise in use), one forward call splits its
// products' columns and its (sequence, head) pairs over the team's threads, which spin between the
// call's steps (ThreadPool::SpinScope). For few rows (<= 256) and heads of whole GEMM panels, a thread
// computes its heads' query, key and value columns and then their attention in one step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "encode/linear.h"
#include "quiver/encode/safetensors.h"

namespace quiver {
class ThreadPool;
}

namespace quiver::encode::detail {

struct BertConfig {
    std::size_t vocab_size = 0;
    std::size_t hidden = 0;
    std::size_t layers = 0;
    std::size_t heads = 0;
    std::size_t intermediate = 0;
    std::size_t max_position = 0;
    std::size_t type_vocab = 0;
    float layer_norm_eps = 1e-12f;
    /// RoBERTa / XLM-RoBERTa number positions from pad_token_id + 1 (BERT from 0); usable positions
    /// are max_position - position_offset.
    std::size_t position_offset = 0;
    std::string model_type = "bert";
    std::vector<std::string> architectures;

    std::size_t max_length() const noexcept { return max_position - position_offset; }

    /// Parses config.json text; `path` names the file in errors.
    static Result<BertConfig> parse(std::string_view json_text, const std::string& path);
};

struct BertLayer {
    Linear qkv;                        // [3H, H] (query, key, value stacked)
    std::vector<float> bqkv;           // [3H]
    Linear wo;                         // [H, H]
    std::vector<float> bo;             // [H]
    std::vector<float> ln1_g, ln1_b;   // [H]
    Linear w1;                         // [I, H]
    std::vector<float> b1;             // [I]
    Linear w2;                         // [H, I]
    std::vector<float> b2;             // [H]
    std::vector<float> ln2_g, ln2_b;   // [H]
};

/// BertForMaskedLM head (SPLADE): transform dense + gelu + LayerNorm, then decoder to the vocabulary.
struct MlmHead {
    Linear dense;
    std::vector<float> dense_b, ln_g, ln_b;
    Linear decoder;                // [V, H]; the word embeddings when tied (absent from the file)
    std::vector<float> decoder_b;  // [V]
};

struct BertSequence {
    const std::int32_t* ids = nullptr;
    std::size_t length = 0;  ///< tokens (rows of output)
    std::size_t attend = 0;  ///< keys visible to attention: positions [0, attend), 1 <= attend <= length
};

/// Per-thread scratch, grown on demand and reused across batches (no per-token allocation).
struct AttentionScratch {
    PackedB keys, values;
    std::vector<float> scores;
    std::vector<float> inv_sum;  // 1 / (sum of a query row's exps): softmax's normalisation, applied to the context
};

/// Activations of one group of whole sequences run by one thread (BertModel::forward's sequence-parallel
/// and one-thread paths): Q/K/V, attention context and FFN intermediate rows of the group.
struct GroupScratch {
    std::vector<float> qkv, ctx, inter;
    LinearScratch linear;
};

struct BertWorkspace {
    std::vector<float> x, qkv, ctx, tmp, inter, logits;
    std::vector<std::size_t> offsets;
    std::vector<AttentionScratch> attention;  // one per team thread (one without a team)
    std::vector<GroupScratch> groups;         // one per team thread (one without a team)
    LinearScratch linear;
};

class BertModel {
public:
    /// Loads weights named `embeddings.*` / `encoder.layer.N.*` (optionally under `bert.`) and, when
    /// `with_mlm_head`, the `cls.predictions.*` head. Shapes are checked against the config.
    /// RoBERTa-family weights are read under `roberta.` or without a prefix. `int8`: the linear layers
    /// of the encoder and heads run as dynamic int8 products (linear.h).
    static Result<BertModel> load(const SafeTensors& st, const BertConfig& config, bool with_mlm_head,
                                  bool int8 = false);

    const BertConfig& config() const noexcept { return config_; }
    const std::string& prefix() const noexcept { return prefix_; }
    bool has_mlm_head() const noexcept { return mlm_.dense.n() != 0; }

    /// Runs the encoder; on return ws.x holds (sum of lengths) x hidden final hidden states, sequence b
    /// starting at row ws.offsets[b]. Every id must be in [0, vocab_size) and every length <= max_position
    /// (the caller guarantees both).
    void forward(std::span<const BertSequence> seqs, BertWorkspace& ws, ThreadPool* team = nullptr) const;

    /// SPLADE: out[v] = max over rows of log(1 + relu(logit_v)) for `rows` hidden states (each `hidden`
    /// floats, row stride hidden). `out` has vocab_size entries.
    void splade_max(const float* hidden_rows, std::size_t rows, BertWorkspace& ws, float* out) const;

private:
    BertConfig config_;
    std::string prefix_;
    std::vector<float> word_, position_, type0_, emb_ln_g_, emb_ln_b_;
    std::vector<BertLayer> layers_;
    MlmHead mlm_;
};

}  // namespace quiver::encode::detail
