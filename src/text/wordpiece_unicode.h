// Private to text/: Unicode character data for the Hugging Face BERT normaliser and pre-tokeniser.
//
// The tables (wordpiece_unicode_data.cpp) are generated from Python's unicodedata by
// `scripts/make_encoder_fixtures.py unicode`; the predicates follow the Rust `tokenizers` crate:
// "control" is any C* category except \t \n \r, "whitespace" is Unicode White_Space, punctuation is
// any P* category or ASCII punctuation, and accent stripping is canonical decomposition (NFD) with
// non-spacing marks (Mn) removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace quiver::text::wordpiece_data {

struct ClassRange {
    char32_t first;
    char32_t last;
    std::uint8_t cls;  ///< 1 = other (C*), 2 = non-spacing mark (Mn), 3 = punctuation
};
struct LowerEntry {
    char32_t cp;
    char32_t lower[3];  ///< full lower-case mapping, zero-padded
};
struct DecompEntry {
    char32_t cp;
    std::uint32_t offset;  ///< into kDecompChars
    std::uint32_t length;  ///< canonical decomposition with Mn removed (may be 0)
};

extern const ClassRange kClassRanges[];
extern const std::size_t kNumClassRanges;
extern const LowerEntry kLower[];
extern const std::size_t kNumLower;
extern const DecompEntry kDecomp[];
extern const std::size_t kNumDecomp;
extern const char32_t kDecompChars[];

}  // namespace quiver::text::wordpiece_data

namespace quiver::text::wordpiece_unicode {

enum class CharClass : std::uint8_t { kPlain = 0, kOther = 1, kMark = 2, kPunct = 3 };

CharClass char_class(char32_t c) noexcept;
/// Rust char::is_whitespace (Unicode White_Space).
bool is_whitespace(char32_t c) noexcept;
/// C* category except tab, newline, carriage return.
bool is_control(char32_t c) noexcept;
/// ASCII punctuation or a P* category.
bool is_punctuation(char32_t c) noexcept;
/// The CJK Unified Ideograph blocks BERT isolates.
bool is_cjk(char32_t c) noexcept;
/// Appends the full lower-case mapping of c.
void append_lower(char32_t c, std::u32string& out);
/// Appends the canonical decomposition of c without non-spacing marks (c itself if it has none).
void append_stripped(char32_t c, std::u32string& out);

/// Decodes UTF-8; returns false and the byte offset of the first invalid sequence on failure.
bool decode_utf8(std::string_view s, std::u32string& out, std::size_t* bad_offset) noexcept;
void append_utf8(char32_t c, std::string& out);

}  // namespace quiver::text::wordpiece_unicode
