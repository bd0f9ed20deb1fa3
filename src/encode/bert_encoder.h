// Private to encode/: the BERT-family Encoder (dense / SPLADE / ColBERT) over BertModel.
//
// Threading: texts are tokenised in parallel, sorted by length (length bucketing) and cut into
// batches of LoadOptions::batch; workers of the encoder's pool claim whole batches and run the
// forward pass single-threaded on their own workspace. A call with a single batch (a query) runs
// it with the pool as the forward pass's team instead (products split by columns, attention by
// (sequence, head)).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "encode/bert_model.h"
#include "quiver/core/thread_pool.h"
#include "quiver/encode/encoder.h"
#include "quiver/text/wordpiece.h"

namespace quiver::encode::detail {

class BertEncoder final : public Encoder {
public:
    /// Loads a Hugging Face folder: config.json, model.safetensors, tokenizer.json (or vocab.txt),
    /// optional sentence-transformers files (modules.json, 1_Pooling/config.json, Normalize,
    /// config_sentence_transformers.json prompts, sentence_bert_config.json max_seq_length),
    /// optional MLM head (SPLADE) and `linear.weight` with artifact.metadata (ColBERT).
    static Result<std::unique_ptr<BertEncoder>> load(const std::string& dir, const LoadOptions& options);

    const EncoderInfo& info() const noexcept override { return info_; }
    Result<Embeddings> encode(std::span<const std::string_view> texts, const EncodeOptions& options) override;
    std::string_view term(std::uint32_t id) const noexcept override;

private:
    enum class Pooling : std::uint8_t { kCls, kMean };

    BertEncoder() = default;
    Status load_sentence_transformers(const std::string& dir);
    Status load_colbert(const std::string& dir, const SafeTensors& st);
    Status tokenize_all(std::span<const std::string_view> texts, const EncodeOptions& options,
                        std::vector<std::vector<std::int32_t>>& ids, std::vector<std::size_t>& attend);
    void post_process(const EncodeOptions& options, std::size_t index, const std::vector<std::int32_t>& ids,
                      const float* rows, BertWorkspace& ws, Embeddings& out) const;

    LoadOptions options_;
    EncoderInfo info_;
    text::HfTokenizer tokenizer_;
    BertModel model_;
    std::size_t max_length_ = 512;
    std::size_t st_max_seq_length_ = std::numeric_limits<std::size_t>::max();  // sentence_bert_config.json
    Pooling pooling_ = Pooling::kMean;
    bool normalize_ = false;
    std::string query_prefix_;
    std::string document_prefix_;
    // ColBERT
    Linear colbert_;  // [dim, hidden]
    std::size_t colbert_dim_ = 0;
    std::size_t query_maxlen_ = 32;
    std::size_t doc_maxlen_ = std::numeric_limits<std::size_t>::max();
    bool attend_to_mask_ = false;
    std::int32_t query_marker_ = -1;
    std::int32_t doc_marker_ = -1;
    std::int32_t mask_id_ = -1;
    std::vector<std::uint8_t> punctuation_;  // by token id
    std::unique_ptr<ThreadPool> pool_;
    std::vector<BertWorkspace> workspaces_;  // one per pool worker
};

}  // namespace quiver::encode::detail
