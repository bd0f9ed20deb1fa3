#include "text/wordpiece_unicode.h"

#include <algorithm>

namespace quiver::text::wordpiece_unicode {

namespace wd = wordpiece_data;

CharClass char_class(char32_t c) noexcept {
    const wd::ClassRange* begin = wd::kClassRanges;
    const wd::ClassRange* end = wd::kClassRanges + wd::kNumClassRanges;
    const wd::ClassRange* it =
        std::upper_bound(begin, end, c, [](char32_t v, const wd::ClassRange& r) { return v < r.first; });
    if (it == begin) return CharClass::kPlain;
    --it;
    return c <= it->last ? static_cast<CharClass>(it->cls) : CharClass::kPlain;
}

bool is_whitespace(char32_t c) noexcept {
    switch (c) {
        case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
        case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
            return true;
        default:
            return c >= 0x2000 && c <= 0x200A;
    }
}

bool is_control(char32_t c) noexcept {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    return char_class(c) == CharClass::kOther;
}

bool is_punctuation(char32_t c) noexcept {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
        return true;
    }
    return c > 127 && char_class(c) == CharClass::kPunct;
}

bool is_cjk(char32_t c) noexcept {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B920 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_lower(char32_t c, std::u32string& out) {
    if (c < 128) {
        out.push_back((c >= 'A' && c <= 'Z') ? c + 32 : c);
        return;
    }
    const wd::LowerEntry* end = wd::kLower + wd::kNumLower;
    const wd::LowerEntry* it =
        std::lower_bound(wd::kLower, end, c, [](const wd::LowerEntry& e, char32_t v) { return e.cp < v; });
    if (it == end || it->cp != c) {
        out.push_back(c);
        return;
    }
    for (char32_t l : it->lower) {
        if (l != 0) out.push_back(l);
    }
}

void append_stripped(char32_t c, std::u32string& out) {
    if (c < 0xC0) {
        out.push_back(c);
        return;
    }
    if (c >= 0xAC00 && c <= 0xD7A3) {  // Hangul syllable: algorithmic decomposition into jamo
        const char32_t s = c - 0xAC00;
        out.push_back(0x1100 + s / 588);
        out.push_back(0x1161 + (s % 588) / 28);
        if (s % 28 != 0) out.push_back(0x11A7 + s % 28);
        return;
    }
    const wd::DecompEntry* end = wd::kDecomp + wd::kNumDecomp;
    const wd::DecompEntry* it =
        std::lower_bound(wd::kDecomp, end, c, [](const wd::DecompEntry& e, char32_t v) { return e.cp < v; });
    if (it == end || it->cp != c) {
        if (char_class(c) != CharClass::kMark) out.push_back(c);
        return;
    }
    for (std::uint32_t i = 0; i < it->length; ++i) out.push_back(wd::kDecompChars[it->offset + i]);
}

bool decode_utf8(std::string_view s, std::u32string& out, std::size_t* bad_offset) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char b = p[i];
        char32_t cp;
        std::size_t len;
        if (b < 0x80) {
            out.push_back(b);
            ++i;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            cp = b & 0x1F; len = 2;
        } else if ((b & 0xF0) == 0xE0) {
            cp = b & 0x0F; len = 3;
        } else if ((b & 0xF8) == 0xF0) {
            cp = b & 0x07; len = 4;
        } else {
            *bad_offset = i;
            return false;
        }
        if (i + len > n) {
            *bad_offset = i;
            return false;
        }
        for (std::size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) {
                *bad_offset = i;
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            *bad_offset = i;
            return false;
        }
        out.push_back(cp);
        i += len;
    }
    return true;
}

void append_utf8(char32_t c, std::string& out) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

}  // namespace quiver::text::wordpiece_unicode
