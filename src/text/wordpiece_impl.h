// Private to text/: the state of a loaded HfTokenizer and its pipeline, in the order Hugging Face
// `tokenizers` runs it: added tokens matched in the raw text, normaliser, added tokens matched in the
// normalised text, pre-tokeniser, model, post-processor. wordpiece.cpp parses tokenizer.json,
// wordpiece_model.cpp runs the pipeline, hf_models.cpp holds the three models.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/text/wordpiece.h"
#include "text/precompiled.h"

namespace quiver::text::detail {

struct NormStep {
    enum class Kind : std::uint8_t {
        kBert, kLowercase, kStripAccents, kNfd, kNfkd, kNfc, kNfkc, kStrip, kReplace, kCollapseWhitespace,
        kPrepend, kByteLevel, kPrecompiled, kCollapseSpaces
    };
    Kind kind = Kind::kBert;
    bool clean_text = true;
    bool chinese = true;
    bool strip_accents = true;
    bool lowercase = true;
    bool strip_left = true;
    bool strip_right = true;
    std::u32string from;
    std::u32string to;                          // Replace content (kReplace, kCollapseWhitespace, kCollapseSpaces)
    std::shared_ptr<const Charsmap> charsmap;   // kPrecompiled
};

/// How a split keeps its delimiters (SplitDelimiterBehavior).
enum class Behavior : std::uint8_t { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
/// The pre-tokenisation regexes implemented (by hand, with the regex's leftmost-first semantics).
enum class KnownRegex : std::uint8_t { kGpt2, kLlama3, kQwen2 };

struct PreStep {
    enum class Kind : std::uint8_t {
        kBert, kWhitespace, kWhitespaceSplit, kPunctuation, kDigits, kCharDelimiter, kSplitString, kSplitRegex,
        kMetaspace, kByteLevel
    };
    enum class Prepend : std::uint8_t { kAlways, kFirst, kNever };
    Kind kind = Kind::kBert;
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    bool individual_digits = false;
    std::u32string pattern;            // Split (string) / CharDelimiterSplit
    KnownRegex regex = KnownRegex::kGpt2;
    char32_t replacement = 0x2581;     // Metaspace '▁'
    Prepend prepend = Prepend::kAlways;
    bool split = true;
    bool add_prefix_space = true;      // ByteLevel
    bool use_regex = true;             // ByteLevel
};

struct AddedToken {
    std::u32string content;  ///< matched text: the content, or its normalised form when `normalized`
    std::int32_t id = 0;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
};

/// Leftmost-longest matching of a set of added tokens (a character trie).
class AddedMatcher {
public:
    struct Match {
        std::size_t begin;
        std::size_t end;
        std::int32_t token = -1;     ///< index into the token list; -1 for text between matches
        std::size_t search_end = 0;  ///< where the search for the next match resumes
    };
    void build(const std::vector<AddedToken>& tokens, bool normalized);
    bool empty() const noexcept { return nodes_.size() <= 1; }
    /// Splits s into text and matches covering all of it, applying single_word, lstrip and rstrip.
    void split(const std::u32string& s, const std::vector<AddedToken>& tokens, std::vector<Match>& out) const;
    /// The next accepted match in UTF-8 text starting in [from, horizon) (lstrip stops at
    /// `start_offset`, the end of the previous match); false when there is none. Offsets are bytes.
    bool next(std::string_view s, std::size_t from, std::size_t start_offset, const std::vector<AddedToken>& tokens,
              Match& out, std::size_t horizon) const;

private:
    template <typename Text>
    bool find(const Text& s, std::size_t from, std::size_t start_offset, const std::vector<AddedToken>& tokens,
              Match& out, std::size_t horizon) const;

    struct Node {
        std::vector<std::pair<char32_t, std::int32_t>> next;  // sorted by character
        std::int32_t token = -1;
    };
    std::vector<Node> nodes_;
};

/// Where tokens go: ids (and token strings when wanted), up to `limit` ids (0 = no limit).
struct Sink {
    std::vector<std::int32_t>& ids;
    std::vector<std::string>* tokens;
    std::size_t limit;
    std::size_t start;         // ids.size() when the sink was made
    std::size_t tokens_start;  // tokens->size() then
    bool full() const noexcept { return limit != 0 && ids.size() - start >= limit; }
    void push(std::int32_t id, std::string_view token) {
        ids.push_back(id);
        if (tokens != nullptr) tokens->emplace_back(token);
    }
};

struct TokenizerImpl {
    HfTokenizer::ModelKind kind = HfTokenizer::ModelKind::kWordPiece;
    std::vector<NormStep> norm;
    std::vector<PreStep> pre;
    std::vector<AddedToken> added;
    AddedMatcher raw_matcher;         // added tokens with normalized = false
    AddedMatcher normalized_matcher;  // added tokens with normalized = true
    bool chunkable = true;            // normalisation may run piecewise (see run())
    bool cut_after_ascii_only = false;  // with a charsmap: a chunk may end only after an ASCII letter or
    std::array<bool, 128> cut_after{};  // digit no charsmap key starts with (see segment())
    std::unordered_map<std::string, std::int32_t> vocab;
    std::vector<std::string> tokens;  // id -> token (model vocabulary and added tokens)
    std::int32_t unk = -1;
    std::vector<std::int32_t> prefix;  // post-processor ids before the sequence ([CLS])
    std::vector<std::int32_t> suffix;  // after it ([SEP])
    std::vector<std::string> prefix_tokens;
    std::vector<std::string> suffix_tokens;
    std::size_t truncation = 0;        // tokenizer.json "truncation.max_length" (0 = none)
    bool truncate_left = false;
    std::size_t max_token_chars = 1;  // longest vocabulary token, in characters (bounds the model searches)
    // WordPiece
    std::string continuing_prefix = "##";
    std::size_t max_input_chars = 100;
    // BPE
    std::unordered_map<std::uint64_t, std::pair<std::uint32_t, std::int32_t>> merges;  // (a,b) -> rank, new id
    std::string bpe_prefix;  // continuing_subword_prefix
    std::string bpe_suffix;  // end_of_word_suffix
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
    std::uint64_t cache_id = 0;  // keys this tokenizer's per-thread BPE word cache (hf_models.cpp)
    // Unigram
    std::vector<double> scores;
    double min_score = 0.0;
    struct TrieNode {
        std::vector<std::pair<unsigned char, std::int32_t>> next;  // sorted by byte
        std::int32_t id = -1;
    };
    std::vector<TrieNode> trie;  // the pieces' UTF-8 bytes, for common-prefix search

    /// The whole pipeline without post-processing: appends ids (and token strings) to the sink,
    /// stopping once it holds `limit` ids.
    [[nodiscard]] Status run(std::string_view text, Sink& sink) const;  // text: valid UTF-8
    void normalize(std::u32string& s, bool first_chunk, bool last_chunk) const;

private:
    [[nodiscard]] Status segment(std::string_view s, std::size_t begin, std::size_t& cursor, std::size_t end, bool final,
                                 Sink& sink) const;
    [[nodiscard]] Status piece(std::u32string text, bool first, Sink& sink) const;
    [[nodiscard]] Status model(const std::u32string& word, Sink& sink) const;
    void word_pieces(const std::u32string& word, Sink& sink) const;
    void bpe(const std::string& word, Sink& sink) const;
    std::vector<std::int32_t> bpe_merge(const std::string& word) const;
    [[nodiscard]] Status unigram(const std::u32string& word, Sink& sink) const;
};

/// A fresh key for a tokenizer's per-thread BPE word cache.
std::uint64_t new_bpe_cache_id() noexcept;

/// The byte-to-character map of the ByteLevel pre-tokenizer (GPT-2's bytes_to_unicode).
char32_t byte_char(std::uint8_t b) noexcept;

}  // namespace quiver::text::detail
