#include "text/precompiled.h"

#include <fmt/format.h>

#include <cstring>
#include <unordered_set>

#include "text/wordpiece_unicode.h"

namespace quiver::text::detail {

namespace wu = wordpiece_unicode;

namespace {

// darts-clone unit fields.
constexpr bool has_leaf(std::uint32_t u) noexcept { return ((u >> 8) & 1U) != 0; }
constexpr std::uint32_t value_of(std::uint32_t u) noexcept { return u & 0x7FFFFFFFU; }
constexpr std::uint32_t label_of(std::uint32_t u) noexcept { return u & (0x80000000U | 0xFFU); }
constexpr std::size_t offset_of(std::uint32_t u) noexcept {
    return static_cast<std::size_t>(u >> 10) << ((u & (1U << 9)) >> 6);
}

// Standard base64 with padding (the alphabet and form serde writes tokenizer.json's charsmap in).
Result<std::string> decode_base64(std::string_view in) {
    static const auto table = [] {
        std::array<std::int8_t, 256> t{};
        t.fill(-1);
        const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
        return t;
    }();
    if (in.size() % 4 != 0) return data_loss(fmt::format("precompiled_charsmap: base64 length {} is not a multiple of 4", in.size()));
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        std::uint32_t acc = 0;
        int pad = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char ch = in[i + k];
            if (ch == '=' && last && k >= 2) {
                ++pad;
                acc <<= 6;
                continue;
            }
            const std::int8_t v = table[static_cast<unsigned char>(ch)];
            if (v < 0 || pad > 0) return data_loss(fmt::format("precompiled_charsmap: invalid base64 at character {}", i + k));
            acc = (acc << 6) | static_cast<std::uint32_t>(v);
        }
        out.push_back(static_cast<char>((acc >> 16) & 0xFF));
        if (pad < 2) out.push_back(static_cast<char>((acc >> 8) & 0xFF));
        if (pad < 1) out.push_back(static_cast<char>(acc & 0xFF));
    }
    return out;
}

std::size_t utf8_bytes(char32_t c, unsigned char* out) noexcept {
    if (c < 0x80) {
        out[0] = static_cast<unsigned char>(c);
        return 1;
    }
    if (c < 0x800) {
        out[0] = static_cast<unsigned char>(0xC0 | (c >> 6));
        out[1] = static_cast<unsigned char>(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = static_cast<unsigned char>(0xE0 | (c >> 12));
        out[1] = static_cast<unsigned char>(0x80 | ((c >> 6) & 0x3F));
        out[2] = static_cast<unsigned char>(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = static_cast<unsigned char>(0xF0 | (c >> 18));
    out[1] = static_cast<unsigned char>(0x80 | ((c >> 12) & 0x3F));
    out[2] = static_cast<unsigned char>(0x80 | ((c >> 6) & 0x3F));
    out[3] = static_cast<unsigned char>(0x80 | (c & 0x3F));
    return 4;
}

}  // namespace

Result<std::shared_ptr<const Charsmap>> Charsmap::from_base64(std::string_view base64) {
    QUIVER_ASSIGN_OR_RETURN(std::string bytes, decode_base64(base64));
    return parse(bytes);
}

Result<std::shared_ptr<const Charsmap>> Charsmap::parse(std::string_view bytes) {
    auto m = std::make_shared<Charsmap>();
    if (bytes.size() < 4) return data_loss(fmt::format("precompiled_charsmap of {} bytes has no trie size", bytes.size()));
    std::uint32_t trie_bytes = 0;
    for (int k = 3; k >= 0; --k) trie_bytes = (trie_bytes << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
    if (trie_bytes == 0 || trie_bytes % 4 != 0 || trie_bytes > bytes.size() - 4) {
        return data_loss(fmt::format("precompiled_charsmap: trie of {} bytes in a charsmap of {} bytes", trie_bytes, bytes.size()));
    }
    m->units_.resize(trie_bytes / 4);
    for (std::size_t i = 0; i < m->units_.size(); ++i) {
        std::uint32_t u = 0;
        for (int k = 3; k >= 0; --k) u = (u << 8) | static_cast<unsigned char>(bytes[4 + 4 * i + static_cast<std::size_t>(k)]);
        m->units_[i] = u;
    }
    m->blob_ = std::string(bytes.substr(4 + trie_bytes));
    std::size_t bad = 0;
    if (!wu::valid_utf8(m->blob_, &bad)) {
        return data_loss(fmt::format("precompiled_charsmap: replacement strings are not UTF-8 (byte {})", bad));
    }
    // Every node reachable from the root: children in range, leaves pointing at the start of a
    // replacement string. Each unit is owned by one parent (base ^ label), so each is visited once.
    const std::vector<std::uint32_t>& units = m->units_;
    const std::size_t n = units.size();
    std::vector<bool> seen(n, false);
    std::vector<std::pair<std::size_t, std::size_t>> stack{{offset_of(units[0]), 0}};  // (base, depth)
    std::unordered_set<std::uint32_t> values;
    while (!stack.empty()) {
        const auto [base, depth] = stack.back();
        stack.pop_back();
        for (std::size_t c = 1; c < 256; ++c) {
            const std::size_t q = base ^ c;
            if (q >= n || label_of(units[q]) != c || seen[q]) continue;
            seen[q] = true;
            const std::size_t child = q ^ offset_of(units[q]);
            if (has_leaf(units[q])) {
                if (child >= n) return data_loss(fmt::format("precompiled_charsmap: trie leaf {} is outside the trie", child));
                const std::uint32_t v = value_of(units[child]);
                if (v > m->blob_.size() ||
                    (v < m->blob_.size() && (static_cast<unsigned char>(m->blob_[v]) & 0xC0) == 0x80)) {
                    return data_loss(fmt::format("precompiled_charsmap: replacement offset {} is not a string start", v));
                }
                values.insert(v);
            }
            if (depth == 0 && c < 128) m->ascii_key_[c] = true;
            stack.emplace_back(child, depth + 1);
        }
    }
    m->replacements_ = values.size();
    return std::shared_ptr<const Charsmap>(std::move(m));
}

std::int64_t Charsmap::shortest(const unsigned char* bytes, std::size_t len) const noexcept {
    const std::size_t n = units_.size();
    std::size_t pos = offset_of(units_[0]);
    for (std::size_t k = 0; k < len; ++k) {
        const unsigned char c = bytes[k];
        if (c == 0) break;
        pos ^= c;
        if (pos >= n) return -1;
        const std::uint32_t u = units_[pos];
        if (label_of(u) != c) return -1;
        pos ^= offset_of(u);
        if (has_leaf(u)) return pos < n ? static_cast<std::int64_t>(value_of(units_[pos])) : -1;
    }
    return -1;
}

void Charsmap::append_replacement(std::int64_t offset, std::u32string& out) const {
    const auto begin = static_cast<std::size_t>(offset);
    std::size_t end = blob_.find('\0', begin);
    if (end == std::string::npos) end = blob_.size();
    std::u32string s;
    std::size_t bad = 0;
    wu::decode_utf8(std::string_view(blob_).substr(begin, end - begin), s, &bad);  // valid: checked by parse()
    out += s;
}

void Charsmap::normalize(std::u32string_view s, std::u32string& out) const {
    unsigned char buf[8];  // a cluster of under 6 bytes, or one character
    std::size_t i = 0;
    while (i < s.size()) {
        const char32_t c = s[i];
        // An ASCII character before ASCII (or the end) is a cluster of its own, except CR before LF.
        if (c < 0x80 && c != '\r' && (i + 1 == s.size() || s[i + 1] < 0x80) && !ascii_key_[c]) {
            out.push_back(c);
            ++i;
            continue;
        }
        const std::size_t j = wu::grapheme_end(s, i);
        std::size_t total = 0;
        for (std::size_t k = i; k < j && total < 6; ++k) total += s[k] < 0x80 ? 1 : s[k] < 0x800 ? 2 : s[k] < 0x10000 ? 3 : 4;
        if (total < 6) {
            std::size_t len = 0;
            for (std::size_t k = i; k < j; ++k) len += utf8_bytes(s[k], buf + len);
            if (const std::int64_t off = shortest(buf, len); off >= 0) {
                append_replacement(off, out);
                i = j;
                continue;
            }
        }
        for (std::size_t k = i; k < j; ++k) {
            const std::size_t len = utf8_bytes(s[k], buf);
            if (const std::int64_t off = shortest(buf, len); off >= 0) append_replacement(off, out);
            else out.push_back(s[k]);
        }
        i = j;
    }
}

}  // namespace quiver::text::detail
