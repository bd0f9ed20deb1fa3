/// @file wordpiece.h
/// @brief Hugging Face `tokenizer.json` tokenizers for the encoders: WordPiece (BERT) and Unigram.
///
/// Implements the pieces of the `tokenizers` pipeline that BERT-family and model2vec models use:
///   normalizer     BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase),
///                  Lowercase, Strip, Replace (literal pattern, or the regex `\s+`), and Sequence of these;
///   pre_tokenizer  BertPreTokenizer (split on whitespace, isolate punctuation), WhitespaceSplit,
///                  Metaspace (replacement, prepend_scheme / add_prefix_space, split), Sequence;
///   model          WordPiece (greedy longest match, `##` continuations, [UNK] for words longer than
///                  max_input_chars_per_word or with no segmentation) and Unigram (Viterbi, unknown
///                  characters as unk_id);
///   post_processor TemplateProcessing / BertProcessing: [CLS] A [SEP] with the template's ids.
/// A tokenizer.json using anything else is rejected with kUnimplemented naming the component.
/// Added tokens are not matched inside input text (text such as "[MASK]" is tokenized as characters).
///
/// Thread-safety: a loaded tokenizer is immutable; `tokenize` and `encode` may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::text {

namespace detail {
struct TokenizerImpl;
}  // namespace detail

class HfTokenizer {
public:
    enum class ModelKind : std::uint8_t { kWordPiece, kUnigram };

    /// Loads `tokenizer.json`. Errors name the file and the offending component.
    [[nodiscard]] static Result<HfTokenizer> load(const std::string& path);
    /// Parses tokenizer.json text; `what` names the source in error messages.
    [[nodiscard]] static Result<HfTokenizer> from_json_text(std::string_view json_text, const std::string& what);
    /// A BERT WordPiece tokenizer from a `vocab.txt` (one token per line, line i = id i), for model
    /// folders without tokenizer.json. `lowercase` also strips accents, as BertTokenizer does.
    [[nodiscard]] static Result<HfTokenizer> from_vocab_txt(const std::string& path, bool lowercase);

    HfTokenizer();
    ~HfTokenizer();
    HfTokenizer(HfTokenizer&&) noexcept;
    HfTokenizer& operator=(HfTokenizer&&) noexcept;

    /// Appends the token ids of `text` (no special tokens) to `out`, stopping after `max_tokens`
    /// ids (0 = no limit). kInvalidArgument when `text` is not valid UTF-8 (naming the byte offset).
    [[nodiscard]] Status tokenize(std::string_view text, std::vector<std::int32_t>& out,
                                  std::size_t max_tokens = 0) const;
    /// `[CLS] tokens [SEP]` truncated to `max_length` ids in total (max_length >= 2), using the
    /// post-processor's special ids; without a post-processor, no special tokens are added.
    [[nodiscard]] Result<std::vector<std::int32_t>> encode(std::string_view text, std::size_t max_length) const;

    ModelKind model_kind() const noexcept;
    std::size_t vocab_size() const noexcept;
    /// Id of a vocabulary token, or nullopt.
    std::optional<std::int32_t> token_to_id(std::string_view token) const;
    /// The token of `id`; empty when out of range.
    std::string_view id_to_token(std::int32_t id) const noexcept;
    /// Special ids; -1 when the tokenizer has none.
    std::int32_t cls_id() const noexcept;
    std::int32_t sep_id() const noexcept;
    std::int32_t unk_id() const noexcept;
    bool adds_special_tokens() const noexcept;

private:
    using Impl = detail::TokenizerImpl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::text
