/// @file wordpiece.h
/// @brief Hugging Face `tokenizer.json` tokenizers for the encoders: WordPiece (BERT), BPE (GPT-2,
/// Llama 3, Qwen 2; byte-level or not) and Unigram (SentencePiece), equal to the `tokenizers` library.
///
/// The pipeline runs as the library runs it (checked id for id against its npm binding by
/// tests/text/hf_reference_test.js):
///   added tokens   `added_tokens` with normalized=false are matched in the raw text first (leftmost
///                  longest; single_word, lstrip, rstrip honoured), so "[MASK]" is one token; those with
///                  normalized=true are matched in the normalised text;
///   normalizer     BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase), Lowercase,
///                  StripAccents (drops combining marks, does not decompose), NFD, NFKD, NFC, NFKC, Strip,
///                  Replace (literal, or the regex `\s+`), Prepend, ByteLevel, Sequence;
///   pre_tokenizer  BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit,
///                  Split (literal pattern, or the GPT-2 / Llama 3 / Qwen 2 regex; every behaviour, invert),
///                  Metaspace (replacement, prepend_scheme, split), ByteLevel (add_prefix_space, use_regex),
///                  Sequence;
///   model          WordPiece (greedy longest match, `##` continuations, [UNK] for over-long or unsegmentable
///                  words), BPE (merge ranks, continuing_subword_prefix, end_of_word_suffix, unk_token,
///                  fuse_unk, byte_fallback, ignore_merges) and Unigram (Viterbi, fused unknowns, byte_fallback);
///   post_processor TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence of these
///                  (single-sequence template: the special ids before and after the sequence).
/// Truncation to a token limit stops tokenising once the limit is reached: the text is normalised and
/// pre-tokenised in chunks, so a huge text is not normalised whole. Character data follows the Unicode
/// versions the library uses (scripts/make_unicode_tables.py). A tokenizer.json using anything else (e.g.
/// the Precompiled normalizer of SentencePiece conversions, a Split regex other than the three above, BPE
/// dropout) is rejected with kUnimplemented naming the component; malformed files are kInvalidArgument.
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
    enum class ModelKind : std::uint8_t { kWordPiece, kBpe, kUnigram };

    /// The output of `encode_full`: ids and their token strings (as the library's Encoding).
    struct Encoding {
        std::vector<std::int32_t> ids;
        std::vector<std::string> tokens;
    };

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

    /// The library's `encode(text, add_special_tokens)`: ids and token strings, truncated to `max_length`
    /// ids in total including special tokens (0 = the tokenizer.json `truncation.max_length`, or no limit
    /// when it has none). kInvalidArgument for invalid UTF-8 or a max_length below the special tokens.
    [[nodiscard]] Result<Encoding> encode_full(std::string_view text, bool add_special_tokens,
                                               std::size_t max_length = 0) const;
    /// tokenizer.json `truncation.max_length`; 0 when the file sets none.
    std::size_t truncation_max_length() const noexcept;

    ModelKind model_kind() const noexcept;
    std::size_t vocab_size() const noexcept;
    /// Id of a vocabulary or added token, or nullopt.
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
