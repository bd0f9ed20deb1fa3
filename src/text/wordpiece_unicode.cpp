#include "text/wordpiece_unicode.h"

#include <algorithm>

namespace quiver::text::wordpiece_unicode {

namespace ud = unicode_data;

namespace {

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

std::uint8_t ccc(char32_t c) noexcept {
    if (c < 0x300) return 0;
    const ud::CccRange* end = ud::kCcc + ud::kCccSize;
    const ud::CccRange* it =
        std::upper_bound(ud::kCcc, end, c, [](char32_t v, const ud::CccRange& r) { return v < r.first; });
    if (it == ud::kCcc) return 0;
    --it;
    return c <= it->last ? it->ccc : 0;
}

const ud::SeqEntry* find_seq(const ud::SeqEntry* table, std::size_t size, char32_t c) noexcept {
    const ud::SeqEntry* end = table + size;
    const ud::SeqEntry* it = std::lower_bound(table, end, c, [](const ud::SeqEntry& e, char32_t v) { return e.cp < v; });
    return (it != end && it->cp == c) ? it : nullptr;
}

void decompose(char32_t c, bool compat, std::u32string& out) {
    if (c < 0xA0) {
        out.push_back(c);
        return;
    }
    if (c >= kSBase && c < kSBase + kSCount) {
        const char32_t s = c - kSBase;
        out.push_back(kLBase + s / kNCount);
        out.push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
        return;
    }
    if (compat) {
        if (const ud::SeqEntry* e = find_seq(ud::kCompat, ud::kCompatSize, c)) {
            out.append(ud::kCompatChars + e->offset, e->length);
            return;
        }
    }
    if (const ud::SeqEntry* e = find_seq(ud::kCanon, ud::kCanonSize, c)) {
        out.append(ud::kCanonChars + e->offset, e->length);
        return;
    }
    out.push_back(c);
}

// Canonical ordering: stable sort of every run of non-starters by combining class.
void reorder(std::u32string& s) {
    std::size_t i = 0;
    while (i < s.size()) {
        if (ccc(s[i]) == 0) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < s.size() && ccc(s[j]) != 0) ++j;
        if (j - i > 1) {
            std::stable_sort(s.begin() + static_cast<std::ptrdiff_t>(i), s.begin() + static_cast<std::ptrdiff_t>(j),
                             [](char32_t a, char32_t b) { return ccc(a) < ccc(b); });
        }
        i = j;
    }
}

char32_t compose_pair(char32_t a, char32_t b) noexcept {
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    }
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
        return a + (b - kTBase);
    }
    const ud::ComposeEntry* end = ud::kCompose + ud::kComposeSize;
    const ud::ComposeEntry* it = std::lower_bound(ud::kCompose, end, std::pair{a, b},
                                                  [](const ud::ComposeEntry& e, const std::pair<char32_t, char32_t>& v) {
                                                      return e.first < v.first || (e.first == v.first && e.second < v.second);
                                                  });
    return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}

void compose(std::u32string& s) {
    std::u32string out;
    out.reserve(s.size());
    std::size_t starter = std::u32string::npos;
    std::uint8_t last_cc = 0;
    for (char32_t c : s) {
        const std::uint8_t cc = ccc(c);
        if (starter != std::u32string::npos) {
            const bool adjacent = out.size() - 1 == starter;
            const bool blocked = !adjacent && (last_cc == 0 || last_cc >= cc);
            if (!blocked) {
                if (char32_t comp = compose_pair(out[starter], c); comp != 0) {
                    out[starter] = comp;
                    continue;
                }
            }
        }
        if (cc == 0) starter = out.size();
        last_cc = cc;
        out.push_back(c);
    }
    s.swap(out);
}

}  // namespace

std::uint16_t flags(char32_t c) noexcept {
    const ud::FlagRange* end = ud::kFlags + ud::kFlagsSize;
    const ud::FlagRange* it =
        std::upper_bound(ud::kFlags, end, c, [](char32_t v, const ud::FlagRange& r) { return v < r.first; });
    if (it == ud::kFlags) return 0;
    --it;
    return c <= it->last ? it->flags : 0;
}

std::uint8_t grapheme_break(char32_t c) noexcept {
    if (c < 0x80) {
        if (c == '\r') return ud::kGcbCR;
        if (c == '\n') return ud::kGcbLF;
        return (c < 0x20 || c == 0x7F) ? ud::kGcbControl : ud::kGcbOther;
    }
    const ud::GcbRange* end = ud::kGcb + ud::kGcbSize;
    const ud::GcbRange* it = std::upper_bound(ud::kGcb, end, c, [](char32_t v, const ud::GcbRange& r) { return v < r.first; });
    if (it == ud::kGcb) return ud::kGcbOther;
    --it;
    return c <= it->last ? it->value : ud::kGcbOther;
}

std::size_t grapheme_end(std::u32string_view s, std::size_t begin) noexcept {
    // The rules of UAX #29 between each pair of characters, with the state GB11 (emoji ZWJ sequences)
    // and GB12/13 (regional indicator pairs) need; GB1/GB2 are the ends of the text.
    auto control = [](std::uint8_t g) { return g == ud::kGcbCR || g == ud::kGcbLF || g == ud::kGcbControl; };
    std::uint8_t prev_v = grapheme_break(s[begin]);
    std::uint8_t prev = prev_v & 0x0F;
    bool in_pict = (prev_v & ud::kExtPict) != 0;  // the text up to prev matches ExtPict Extend*
    bool zwj_after_pict = false;                   // prev is a ZWJ after ExtPict Extend*
    std::size_t ri = prev == ud::kGcbRegionalIndicator ? 1 : 0;
    std::size_t i = begin + 1;
    for (; i < s.size(); ++i) {
        if (s[i] < 0x80 && s[i - 1] < 0x80) {  // ASCII pairs break, except CR LF
            if (s[i - 1] == '\r' && s[i] == '\n') continue;
            break;
        }
        const std::uint8_t cur_v = grapheme_break(s[i]);
        const std::uint8_t cur = cur_v & 0x0F;
        const bool pict = (cur_v & ud::kExtPict) != 0;
        bool join = false;
        if (prev == ud::kGcbCR && cur == ud::kGcbLF) join = true;                                  // GB3
        else if (control(prev) || control(cur)) join = false;                                      // GB4, GB5
        else if (prev == ud::kGcbL && (cur == ud::kGcbL || cur == ud::kGcbV || cur == ud::kGcbLV || cur == ud::kGcbLVT)) join = true;  // GB6
        else if ((prev == ud::kGcbLV || prev == ud::kGcbV) && (cur == ud::kGcbV || cur == ud::kGcbT)) join = true;  // GB7
        else if ((prev == ud::kGcbLVT || prev == ud::kGcbT) && cur == ud::kGcbT) join = true;      // GB8
        else if (cur == ud::kGcbExtend || cur == ud::kGcbZWJ || cur == ud::kGcbSpacingMark) join = true;  // GB9, GB9a
        else if (prev == ud::kGcbPrepend) join = true;                                             // GB9b
        else if (zwj_after_pict && pict) join = true;                                              // GB11
        else if (prev == ud::kGcbRegionalIndicator && cur == ud::kGcbRegionalIndicator && ri % 2 == 1) join = true;  // GB12, GB13
        if (!join) break;
        zwj_after_pict = cur == ud::kGcbZWJ && in_pict;
        in_pict = pict || (cur == ud::kGcbExtend && in_pict);
        ri = cur == ud::kGcbRegionalIndicator ? ri + 1 : 0;
        prev = cur;
    }
    return i;
}

bool is_whitespace(char32_t c) noexcept {
    if (c < 128) return c == ' ' || (c >= 9 && c <= 13);
    return (flags(c) & ud::kWhiteSpace) != 0;
}

bool is_control(char32_t c) noexcept {
    if (c < 128) return (c < 32 || c == 127) && c != '\t' && c != '\n' && c != '\r';
    return (flags(c) & ud::kOther8) != 0;
}

bool is_punctuation(char32_t c) noexcept {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
        return true;
    }
    return c > 127 && (flags(c) & ud::kPunct8) != 0;
}

bool is_cjk(char32_t c) noexcept {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B920 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_letter(char32_t c) noexcept {
    if (c < 128) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return (flags(c) & ud::kLetter) != 0;
}

bool is_number(char32_t c) noexcept {
    if (c < 128) return c >= '0' && c <= '9';
    return (flags(c) & ud::kNumber) != 0;
}

bool is_word(char32_t c) noexcept {
    if (c < 128) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (c == 0x200C || c == 0x200D) return true;  // Join_Control
    return (flags(c) & (ud::kAlphabetic | ud::kMark | ud::kDecimal | ud::kConnector)) != 0;
}

bool is_combining_mark(char32_t c) noexcept { return c >= 0x300 && (flags(c) & ud::kMark9) != 0; }

void append_lower(char32_t c, std::u32string& out) {
    if (c < 128) {
        out.push_back((c >= 'A' && c <= 'Z') ? c + 32 : c);
        return;
    }
    const ud::LowerEntry* end = ud::kLower + ud::kLowerSize;
    const ud::LowerEntry* it =
        std::lower_bound(ud::kLower, end, c, [](const ud::LowerEntry& e, char32_t v) { return e.cp < v; });
    if (it == end || it->cp != c) {
        out.push_back(c);
        return;
    }
    for (char32_t l : it->lower) {
        if (l != 0) out.push_back(l);
    }
}

std::u32string normalize(const std::u32string& s, Form form) {
    const bool compat = form == Form::kNfkd || form == Form::kNfkc;
    std::u32string d;
    d.reserve(s.size() + s.size() / 8);
    for (char32_t c : s) decompose(c, compat, d);
    reorder(d);
    if (form == Form::kNfc || form == Form::kNfkc) compose(d);
    return d;
}

void bert_strip_accents(const std::u32string& s, std::u32string& out) {
    std::u32string d = normalize(s, Form::kNfd);
    for (char32_t c : d) {
        if (c < 0x300 || (flags(c) & ud::kMn8) == 0) out.push_back(c);
    }
}

namespace {

// One scalar value of strict UTF-8 at p[i] (i < n): its length (1..4), or 0 for a bad lead byte, a
// truncated or broken sequence, an overlong form, a surrogate or a value past U+10FFFF.
std::size_t decode_one(const unsigned char* p, std::size_t n, std::size_t i, char32_t& cp) noexcept {
    const unsigned char b = p[i];
    std::size_t len;
    if (b < 0x80) {
        cp = b;
        return 1;
    } else if ((b & 0xE0) == 0xC0) {
        cp = b & 0x1F; len = 2;
    } else if ((b & 0xF0) == 0xE0) {
        cp = b & 0x0F; len = 3;
    } else if ((b & 0xF8) == 0xF0) {
        cp = b & 0x07; len = 4;
    } else {
        return 0;
    }
    if (i + len > n) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((p[i + k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

}  // namespace

bool valid_utf8(std::string_view s, std::size_t* bad_offset) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    char32_t cp;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = decode_one(p, s.size(), i, cp);
        if (len == 0) {
            *bad_offset = i;
            return false;
        }
        i += len;
    }
    return true;
}

bool decode_utf8(std::string_view s, std::u32string& out, std::size_t* bad_offset) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    char32_t cp;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = decode_one(p, s.size(), i, cp);
        if (len == 0) {
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

std::string to_utf8(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) append_utf8(c, out);
    return out;
}

}  // namespace quiver::text::wordpiece_unicode
