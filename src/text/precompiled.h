// Private to text/: the `Precompiled` normalizer of tokenizer.json, SentencePiece's precompiled
// character map (XLM-RoBERTa, T5, mBART, ... converted from a SentencePiece model).
//
// The charsmap (base64 in tokenizer.json) is a little-endian u32 byte count of a double-array trie,
// the trie's u32 units (darts-clone layout: bit 8 has-leaf, bits 0-7 the label, bits 10-31 the offset,
// shifted left by 8 when bit 9 is set; a leaf unit holds a value in bits 0-30), then a blob of
// NUL-terminated UTF-8 replacement strings. The trie's keys are the UTF-8 bytes of the text to
// replace; a key's value is the byte offset of its replacement in the blob.
//
// Applied as Hugging Face `tokenizers` applies it: the text is cut into extended grapheme clusters;
// a cluster shorter than 6 bytes whose bytes begin with a key is replaced whole by the replacement of
// the SHORTEST such key (so a key that covers only the cluster's first character drops the rest of
// the cluster, as the library does); otherwise each character is replaced by the replacement of the
// shortest key its bytes begin with, or kept. A NUL byte ends a key search.
//
// Grapheme clusters follow UAX #29 (Unicode 14.0 property data) without rule GB9c (Indic conjunct
// breaks, Unicode 15.1): a cluster GB9c joins holds at least three 3-byte characters (9 bytes), so it
// is replaced character by character either way, and the only change GB9c could make (a short
// cluster after the conjunct) needs a charsmap key that starts with an Indic consonant.
//
// Thread-safety: immutable after parse().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::text::detail {

class Charsmap {
public:
    /// Parses a base64 charsmap; a malformed one (bad base64, truncated trie, a unit pointing outside the
    /// trie, a replacement offset outside the blob or inside a UTF-8 sequence, a blob that is not UTF-8)
    /// is kDataLoss.
    static Result<std::shared_ptr<const Charsmap>> from_base64(std::string_view base64);
    /// Parses the decoded bytes.
    static Result<std::shared_ptr<const Charsmap>> parse(std::string_view bytes);

    /// Appends the normalisation of s to out.
    void normalize(std::u32string_view s, std::u32string& out) const;

    /// Whether some key starts with the ASCII byte b (< 128).
    bool maps_ascii(unsigned char b) const noexcept { return ascii_key_[b & 0x7F]; }
    /// The number of trie units and of distinct replacement strings (for tests).
    std::size_t units() const noexcept { return units_.size(); }
    std::size_t replacements() const noexcept { return replacements_; }

private:
    /// The replacement offset of the shortest key that `bytes` begins with, or -1.
    std::int64_t shortest(const unsigned char* bytes, std::size_t n) const noexcept;
    void append_replacement(std::int64_t offset, std::u32string& out) const;

    std::vector<std::uint32_t> units_;
    std::string blob_;
    std::size_t replacements_ = 0;
    std::array<bool, 128> ascii_key_{};
};

}  // namespace quiver::text::detail
