// Private to text/: the state of a loaded HfTokenizer and its pipeline (normalise, pre-tokenise,
// model). Split from wordpiece.cpp (parsing tokenizer.json) to keep each file to one concern.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "quiver/text/wordpiece.h"

namespace quiver::text::detail {

struct NormStep {
    enum class Kind : std::uint8_t {
        kBert, kLowercase, kStripAccents, kNfd, kStrip, kReplace, kCollapseWhitespace
    };
    Kind kind = Kind::kBert;
    bool clean_text = true;
    bool chinese = true;
    bool strip_accents = true;
    bool lowercase = true;
    bool strip_left = true;
    bool strip_right = true;
    std::u32string from;
    std::u32string to;
};

struct PreStep {
    enum class Kind : std::uint8_t { kBert, kWhitespaceSplit, kMetaspace };
    Kind kind = Kind::kBert;
    char32_t replacement = 0x2581;  // '▁'
    bool prepend = true;
    bool split = true;
};

struct TokenizerImpl {
    HfTokenizer::ModelKind kind = HfTokenizer::ModelKind::kWordPiece;
    std::vector<NormStep> norm;
    std::vector<PreStep> pre;
    std::unordered_map<std::string, std::int32_t> vocab;
    std::vector<std::string> tokens;
    std::int32_t unk = -1;
    std::vector<std::int32_t> prefix;  // post-processor ids before the sequence ([CLS])
    std::vector<std::int32_t> suffix;  // after it ([SEP])
    // WordPiece
    std::string continuing_prefix = "##";
    std::size_t max_input_chars = 100;
    // Unigram
    std::vector<double> scores;
    double min_score = 0.0;
    std::size_t max_piece_chars = 1;

    /// Normalises, pre-tokenises and runs the model over `chars`, appending at most `max_tokens`
    /// ids (0 = all) to `out`.
    void run(const std::u32string& chars, std::vector<std::int32_t>& out, std::size_t max_tokens) const;

private:
    void normalize(std::u32string& s) const;
    void word_pieces(const std::u32string& word, std::vector<std::int32_t>& out) const;
    void unigram(const std::u32string& word, std::vector<std::int32_t>& out) const;
};

}  // namespace quiver::text::detail
