#include "quiver/text/analyzer.h"

#include <fmt/format.h>
#include <libstemmer.h>
#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstring>
#include <random>
#include <utility>

namespace quiver::text {
namespace {

// Word-break classes of UAX #29 that StandardTokenizer's grammar distinguishes.
enum class Cls : std::uint8_t {
    kOther,         // separator: never part of a token
    kLetter,        // ALetter (and Hebrew_Letter, Hangul): letters of alphabetic scripts
    kNumeric,       // decimal digits
    kKatakana,      // joins with Katakana only
    kIdeo,          // Han ideographs and Hiragana: one token per character
    kExtend,        // combining marks, ZWJ, variation selectors: attach to the previous character
    kExtendNumLet,  // connector punctuation such as '_'
    kMidLetter,     // ':' and friends: inside letter runs
    kMidNum,        // ',' ';': inside digit runs
    kMidNumLet,     // '.' and U+2019: inside letter or digit runs
    kSingleQuote,   // '\'' : like MidNumLet
};

locale_t utf8_locale() {
    static const locale_t loc = [] {
        locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
        if (l == static_cast<locale_t>(nullptr)) l = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", static_cast<locale_t>(nullptr));
        return l;
    }();
    return loc;
}

constexpr std::array<Cls, 128> make_ascii_table() {
    std::array<Cls, 128> t{};
    for (auto& c : t) c = Cls::kOther;
    for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = Cls::kLetter;
    for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = Cls::kLetter;
    for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = Cls::kNumeric;
    t['_'] = Cls::kExtendNumLet;
    t[':'] = Cls::kMidLetter;
    t[','] = Cls::kMidNum;
    t[';'] = Cls::kMidNum;
    t['.'] = Cls::kMidNumLet;
    t['\''] = Cls::kSingleQuote;
    return t;
}
constexpr std::array<Cls, 128> kAscii = make_ascii_table();

Cls classify(char32_t cp) {
    if (cp < 128) return kAscii[cp];
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x0483 && cp <= 0x0489) || (cp >= 0x0591 && cp <= 0x05BD) ||
        (cp >= 0x0610 && cp <= 0x061A) || (cp >= 0x064B && cp <= 0x065F) || (cp >= 0x0900 && cp <= 0x0903) ||
        (cp >= 0x093A && cp <= 0x094F && cp != 0x093D) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
        (cp >= 0x1DC0 && cp <= 0x1DFF) || cp == 0x200C || cp == 0x200D || (cp >= 0x20D0 && cp <= 0x20FF) ||
        (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFE20 && cp <= 0xFE2F) || cp == 0x00AD) {
        return Cls::kExtend;
    }
    switch (cp) {
        case 0x00B7: case 0x0387: case 0x05F4: case 0x2027: case 0xFE13: case 0xFE55: case 0xFF1A:
            return Cls::kMidLetter;
        case 0x037E: case 0x0589: case 0x060C: case 0x060D: case 0x066C: case 0x07F8: case 0x2044:
        case 0xFE10: case 0xFE14: case 0xFE50: case 0xFE54: case 0xFF0C: case 0xFF1B:
            return Cls::kMidNum;
        case 0x2018: case 0x2019: case 0x2024: case 0xFE52: case 0xFF07: case 0xFF0E:
            return Cls::kMidNumLet;
        case 0x203F: case 0x2040: case 0x2054: case 0xFE33: case 0xFE34: case 0xFE4D: case 0xFE4E:
        case 0xFE4F: case 0xFF3F:
            return Cls::kExtendNumLet;
        default:
            break;
    }
    if ((cp >= 0x30A0 && cp <= 0x30FF) || (cp >= 0x31F0 && cp <= 0x31FF) || (cp >= 0xFF66 && cp <= 0xFF9F)) {
        return Cls::kKatakana;
    }
    if ((cp >= 0x3040 && cp <= 0x309F) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
        (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x3FFFF)) {
        return Cls::kIdeo;
    }
    const locale_t loc = utf8_locale();
    if (loc != static_cast<locale_t>(nullptr)) {
        const auto wc = static_cast<wint_t>(cp);
        if (iswalpha_l(wc, loc)) return Cls::kLetter;
        if (iswdigit_l(wc, loc) || iswalnum_l(wc, loc)) return Cls::kNumeric;
        return Cls::kOther;
    }
    // Without a UTF-8 locale: Latin-1 punctuation and the general punctuation block separate,
    // everything else above ASCII counts as a letter.
    if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F)) {
        return Cls::kOther;
    }
    return Cls::kLetter;
}

struct Char {
    char32_t cp;
    Cls cls;
    std::uint32_t begin;  // byte offsets in the input
    std::uint32_t end;
};

// Decodes UTF-8; an invalid or truncated sequence becomes one kOther character.
void decode(std::string_view s, std::vector<Char>& out) {
    out.clear();
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        char32_t cp = 0;
        std::size_t len = 1;
        if (c < 0x80) {
            cp = c;
        } else if ((c >> 5) == 0x6) {
            len = 2, cp = c & 0x1F;
        } else if ((c >> 4) == 0xE) {
            len = 3, cp = c & 0x0F;
        } else if ((c >> 3) == 0x1E) {
            len = 4, cp = c & 0x07;
        } else {
            len = 0;
        }
        bool ok = len > 0 && i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) ok = false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (!ok) {
            out.push_back({0xFFFD, Cls::kOther, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + 1)});
            ++i;
            continue;
        }
        out.push_back({cp, classify(cp), static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + len)});
        i += len;
    }
}

bool is_word(Cls c) { return c == Cls::kLetter || c == Cls::kNumeric || c == Cls::kKatakana; }

// A token: byte offsets [first, second) in the analysed text.
using TokenSpan = std::pair<std::uint32_t, std::uint32_t>;

// The tokenizer's view of the text as characters. ASCII text is read byte by byte (no character of it
// is Extend); other text through its decoded characters. Both run the one grammar below.
struct AsciiChars {
    std::string_view s;
    std::size_t size() const noexcept { return s.size(); }
    Cls cls(std::size_t i) const noexcept { return kAscii[static_cast<unsigned char>(s[i])]; }
    std::uint32_t begin(std::size_t i) const noexcept { return static_cast<std::uint32_t>(i); }
    std::uint32_t end(std::size_t i) const noexcept { return static_cast<std::uint32_t>(i + 1); }
    std::size_t skip_extend(std::size_t i) const noexcept { return i; }
};
struct DecodedChars {
    const std::vector<Char>& cs;
    std::size_t size() const noexcept { return cs.size(); }
    Cls cls(std::size_t i) const noexcept { return cs[i].cls; }
    std::uint32_t begin(std::size_t i) const noexcept { return cs[i].begin; }
    std::uint32_t end(std::size_t i) const noexcept { return cs[i].end; }
    // Index of the next non-Extend character at or after i.
    std::size_t skip_extend(std::size_t i) const noexcept {
        while (i < cs.size() && cs[i].cls == Cls::kExtend) ++i;
        return i;
    }
};

bool is_ascii(std::string_view s) noexcept {
    const char* p = s.data();
    std::size_t n = s.size();
    std::uint64_t any = 0;
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        any |= w;
    }
    for (; n > 0; ++p, --n) any |= static_cast<unsigned char>(*p);
    return (any & 0x8080808080808080ull) == 0;
}

// Emits characters [begin, end) as one or more tokens of at most max_len code points.
template <class Chars>
void emit(const Chars& cs, std::size_t begin, std::size_t end, std::uint32_t max_len, std::vector<TokenSpan>& out) {
    for (std::size_t s = begin; s < end; s += max_len) {
        const std::size_t e = std::min<std::size_t>(end, s + max_len);
        out.push_back({cs.begin(s), cs.end(e - 1)});
    }
}

// StandardTokenizer's grammar (UAX #29 word boundaries, the classes above) over `cs`.
template <class Chars>
void tokenize(const Chars& cs, std::uint32_t max_token_length, std::vector<TokenSpan>& out) {
    const std::size_t n = cs.size();
    std::size_t i = 0;
    while (i < n) {
        const Cls c = cs.cls(i);
        if (c == Cls::kIdeo) {
            const std::size_t e = cs.skip_extend(i + 1);
            emit(cs, i, e, max_token_length, out);
            i = e;
            continue;
        }
        if (!is_word(c) && c != Cls::kExtendNumLet) {
            ++i;
            continue;
        }
        const std::size_t start = i;
        Cls left = c;
        bool has_word = is_word(c);
        std::size_t j = cs.skip_extend(i + 1);  // one past the token so far
        while (j < n) {
            const Cls next = cs.cls(j);
            const bool joins =
                (next == Cls::kExtendNumLet && (is_word(left) || left == Cls::kExtendNumLet)) ||
                (left == Cls::kExtendNumLet && is_word(next)) ||
                ((left == Cls::kLetter || left == Cls::kNumeric) && (next == Cls::kLetter || next == Cls::kNumeric)) ||
                (left == Cls::kKatakana && next == Cls::kKatakana);
            if (joins) {
                left = next;
                has_word = has_word || is_word(next);
                j = cs.skip_extend(j + 1);
                continue;
            }
            // WB6/7 and WB11/12: a single middle character between two letters or two digits.
            const std::size_t after = cs.skip_extend(j + 1);
            if (after < n) {
                const Cls far = cs.cls(after);
                const bool mid_letter = left == Cls::kLetter && far == Cls::kLetter &&
                                        (next == Cls::kMidLetter || next == Cls::kMidNumLet || next == Cls::kSingleQuote);
                const bool mid_num = left == Cls::kNumeric && far == Cls::kNumeric &&
                                     (next == Cls::kMidNum || next == Cls::kMidNumLet || next == Cls::kSingleQuote);
                if (mid_letter || mid_num) {
                    left = far;
                    j = cs.skip_extend(after + 1);
                    continue;
                }
            }
            break;
        }
        if (has_word) emit(cs, start, j, max_token_length, out);
        i = j;
    }
}

// The tokens of `text`, appended to `out`.
void tokenize_spans(std::string_view text, std::uint32_t max_token_length, std::vector<TokenSpan>& out) {
    if (is_ascii(text)) {
        tokenize(AsciiChars{text}, max_token_length, out);
        return;
    }
    thread_local std::vector<Char> cs;
    decode(text, cs);
    tokenize(DecodedChars{cs}, max_token_length, out);
}

constexpr std::string_view kLuceneEnglishStop[] = {
    "a",    "an",    "and",  "are",   "as",    "at",   "be",   "but",  "by",   "for",  "if",
    "in",   "into",  "is",   "it",    "no",    "not",  "of",   "on",   "or",   "such", "that",
    "the",  "their", "then", "there", "these", "they", "this", "to",   "was",  "will", "with"};

bool ends_with_possessive(std::string_view w, std::size_t& strip) {
    // Lucene EnglishPossessiveFilter: a trailing 's or 'S with apostrophe U+0027, U+2019 or U+FF07.
    if (w.size() < 2 || (w.back() != 's' && w.back() != 'S')) return false;
    const std::string_view head = w.substr(0, w.size() - 1);
    for (std::string_view apos : {std::string_view("'"), std::string_view("\xE2\x80\x99"), std::string_view("\xEF\xBC\x87")}) {
        if (head.size() >= apos.size() && head.substr(head.size() - apos.size()) == apos) {
            strip = apos.size() + 1;
            return true;
        }
    }
    return false;
}

}  // namespace

std::string AnalyzerConfig::describe() const {
    if (lowercase && english_possessive && stop_words == StopWords::kLuceneEnglish && stemmer == "porter" &&
        max_token_length == 255) {
        return "lucene-english";
    }
    return fmt::format("lower={} possessive={} stop={} stem={} maxlen={}", lowercase, english_possessive,
                       stop_words == StopWords::kLuceneEnglish ? "lucene-english" : "none",
                       stemmer.empty() ? "none" : stemmer, max_token_length);
}

void tokenize_standard(std::string_view text, std::uint32_t max_token_length, std::vector<std::string>& out) {
    thread_local std::vector<TokenSpan> spans;
    spans.clear();
    tokenize_spans(text, max_token_length, spans);
    for (const auto& [begin, end] : spans) out.emplace_back(text.substr(begin, end - begin));
}

bool is_stop_word(StopWords set, std::string_view word) noexcept {
    if (set != StopWords::kLuceneEnglish) return false;
    return std::binary_search(std::begin(kLuceneEnglishStop), std::end(kLuceneEnglishStop), word);
}

std::string to_lower_utf8(std::string_view word) {
    std::string out;
    out.reserve(word.size());
    bool ascii = true;
    for (char ch : word) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
    if (ascii) {
        for (char ch : word) out.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch);
        return out;
    }
    std::vector<Char> cs;
    decode(word, cs);
    const locale_t loc = utf8_locale();
    for (const Char& c : cs) {
        char32_t cp = c.cp;
        if (c.cls == Cls::kOther && cp == 0xFFFD) {
            out.append(word.substr(c.begin, c.end - c.begin));
            continue;
        }
        if (cp < 128) {
            if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
        } else if (loc != static_cast<locale_t>(nullptr)) {
            cp = static_cast<char32_t>(towlower_l(static_cast<wint_t>(cp), loc));
        }
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    }
    return out;
}

void Analyzer::StemmerDeleter::operator()(void* stemmer) const noexcept {
    if (stemmer != nullptr) sb_stemmer_delete(static_cast<sb_stemmer*>(stemmer));
}

Result<Analyzer> Analyzer::create(AnalyzerConfig config) {
    if (config.max_token_length == 0) return invalid_argument("analyzer: max_token_length must be >= 1");
    Analyzer a(std::move(config));
    if (!a.config_.stemmer.empty()) {
        sb_stemmer* s = sb_stemmer_new(a.config_.stemmer.c_str(), "UTF_8");
        if (s == nullptr) {
            return invalid_argument(fmt::format("analyzer: unknown stemmer '{}' (libstemmer knows e.g. "
                                                "porter, english)", a.config_.stemmer));
        }
        a.stemmer_.reset(s);
    }
    return a;
}

Analyzer::Analyzer(Analyzer&&) noexcept = default;
Analyzer& Analyzer::operator=(Analyzer&&) noexcept = default;
Analyzer::~Analyzer() = default;

namespace {

// Each thread's memo of the token filters after the possessive one (lower-casing, stop words,
// stemming): a pure function of the token and those three settings, so a cached term is the term the
// chain computes. Stemming is most of an analysis's cost, and text repeats its words.
//
// An open-addressing table (half full at most) of 32-bit slots over one arena of records [count,
// token length, term length, token, term]: a lookup hashes the token, reads its slot and compares the
// record (two cache lines, mostly). The hash is seeded per thread at random, so text cannot be written
// to collide. Bounded: kMaxTerms records and kMaxBytes of arena; cleared when full and when the thread
// analyses with other settings. A record's offset names its term until the next clear.
class TermMemo {
public:
    static constexpr std::uint32_t kMaxTerms = 1 << 15;
    static constexpr std::size_t kMaxBytes = std::size_t{8} << 20;
    static constexpr std::uint32_t kNone = ~std::uint32_t{0};

    // `counted` holds at most one entry per record, so with kMaxTerms reserved its push_back cannot
    // throw; the arena starts on the heap (4-aligned records need a 4-aligned base).
    TermMemo() : slots_(2 * kMaxTerms, 0), seed_(random_seed()) {
        counted.reserve(kMaxTerms);
        arena_.reserve(std::size_t{64} << 10);
    }

    // Clears the memo unless it holds terms of `config`'s settings.
    void use(const AnalyzerConfig& config) {
        if (valid_ && lowercase_ == config.lowercase && stop_words_ == config.stop_words && stemmer_ == config.stemmer) {
            return;
        }
        clear();
        lowercase_ = config.lowercase;
        stop_words_ = config.stop_words;
        stemmer_ = config.stemmer;
        valid_ = true;
    }

    std::uint64_t hash(std::string_view token) const noexcept {
        const char* p = token.data();
        std::size_t n = token.size();
        std::uint64_t h = seed_ ^ (n * 0x9E3779B97F4A7C15ull);
        for (; n > 8; p += 8, n -= 8) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            h = mix(h ^ w, 0x9E3779B97F4A7C15ull);
        }
        // The last 1-8 bytes in whole loads (a byte-wise copy into a word stalls on store forwarding):
        // the last 8 of the token when it has them, else two overlapping 4-byte loads or 3 bytes.
        std::uint64_t w = 0;
        if (token.size() >= 8) {
            std::memcpy(&w, token.data() + token.size() - 8, 8);
        } else if (n >= 4) {
            std::uint32_t a, b;
            std::memcpy(&a, p, 4);
            std::memcpy(&b, p + n - 4, 4);
            w = (static_cast<std::uint64_t>(a) << 32) | b;
        } else if (n > 0) {
            const auto* u = reinterpret_cast<const unsigned char*>(p);
            w = (std::uint64_t{u[0]} << 16) | (std::uint64_t{u[n / 2]} << 8) | u[n - 1];
        }
        return mix(h ^ w, 0xBF58476D1CE4E5B9ull);
    }

    // The record of `token` (hash h), or kNone.
    std::uint32_t find(std::string_view token, std::uint64_t h) const noexcept {
        const std::uint32_t tag = fingerprint(h);
        for (std::size_t i = h & kMask;; i = (i + 1) & kMask) {
            const std::uint32_t slot = slots_[i];
            if (slot == 0) return kNone;
            if ((slot & kTagMask) != tag) continue;
            const std::uint32_t r = ((slot >> kTagBits) - 1) * 4;
            const Header& x = header(r);
            if (x.key_len == token.size() && same_bytes(arena_.data() + r + sizeof(Header), token.data(), token.size())) {
                return r;
            }
        }
    }

    // Brings the slot of hash h towards the cache; `record` too, once that slot is (its record, if any).
    void prefetch_slot(std::uint64_t h) const noexcept { __builtin_prefetch(&slots_[h & kMask]); }
    void prefetch_record(std::uint64_t h) const noexcept {
        const std::uint32_t slot = slots_[h & kMask];
        if (slot != 0 && (slot & kTagMask) == fingerprint(h)) __builtin_prefetch(arena_.data() + ((slot >> kTagBits) - 1) * 4);
    }

    // Record r's term ("" for a dropped token); valid until the next insert.
    std::string_view term(std::uint32_t r) const noexcept {
        const Header& x = header(r);
        return {arena_.data() + r + sizeof(Header) + x.key_len, x.term_len};
    }
    // Record r's count (analyze_counts' scratch; zero between calls).
    std::uint32_t& count(std::uint32_t r) noexcept { return header(r).count; }

    // Whether a record of `bytes` bytes (token and term) must wait for a clear.
    bool full(std::size_t bytes) const noexcept {
        return records_ >= kMaxTerms || arena_.size() + sizeof(Header) + bytes + 3 > kMaxBytes;
    }

    // Memoises `term` for `token` (hash h; not held yet; requires !full) and returns its record.
    std::uint32_t insert(std::string_view token, std::string_view term, std::uint64_t h) {
        std::size_t i = h & kMask;
        while (slots_[i] != 0) i = (i + 1) & kMask;
        const auto r = static_cast<std::uint32_t>(arena_.size());
        const Header x{0, static_cast<std::uint32_t>(token.size()), static_cast<std::uint32_t>(term.size())};
        arena_.append(reinterpret_cast<const char*>(&x), sizeof x);
        arena_.append(token);
        arena_.append(term);
        arena_.resize((arena_.size() + 3) & ~std::size_t{3});  // records start 4-aligned
        slots_[i] = ((r / 4 + 1) << kTagBits) | fingerprint(h);
        ++records_;
        return r;
    }

    void clear() {
        std::fill(slots_.begin(), slots_.end(), 0u);
        arena_.clear();
        records_ = 0;
        counted.clear();
    }

    // Zeroes the counts of the records in `counted` and empties it: after a call that completed this
    // finds nothing to do; after one that threw midway it drops that call's partial counts.
    void reset_counts() noexcept {
        for (const std::uint32_t r : counted) count(r) = 0;
        counted.clear();
    }

    std::vector<std::uint32_t> counted;  // analyze_counts' scratch: the records counted

private:
    static constexpr std::size_t kMask = 2 * std::size_t{kMaxTerms} - 1;
    // A slot: (record offset / 4 + 1) above kTagBits bits of the hash the position does not use.
    static constexpr unsigned kTagBits = 10;
    static constexpr std::uint32_t kTagMask = (1u << kTagBits) - 1;
    static_assert(kMaxBytes / 4 < (std::uint64_t{1} << (32 - kTagBits)), "a record's offset / 4 + 1 fits a slot");

    struct Header {
        std::uint32_t count;
        std::uint32_t key_len;
        std::uint32_t term_len;
    };
    Header& header(std::uint32_t r) noexcept { return *reinterpret_cast<Header*>(arena_.data() + r); }
    const Header& header(std::uint32_t r) const noexcept { return *reinterpret_cast<const Header*>(arena_.data() + r); }

    static bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
        for (; n >= 8; a += 8, b += 8, n -= 8) {
            std::uint64_t x, y;
            std::memcpy(&x, a, 8);
            std::memcpy(&y, b, 8);
            if (x != y) return false;
        }
        for (; n > 0; ++a, ++b, --n) {
            if (*a != *b) return false;
        }
        return true;
    }
    static std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
        __extension__ using U128 = unsigned __int128;
        const U128 r = static_cast<U128>(a) * b;
        return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
    }
    static std::uint32_t fingerprint(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h >> 54) & kTagMask; }
    static std::uint64_t random_seed() {
        std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        try {
            std::random_device rd;
            seed ^= (static_cast<std::uint64_t>(rd()) << 32) | rd();
        } catch (...) {  // no entropy source: the clock alone
        }
        return seed;
    }

    std::vector<std::uint32_t> slots_;  // 0 = empty
    std::string arena_;
    std::uint32_t records_ = 0;
    std::uint64_t seed_;
    bool lowercase_ = false;
    StopWords stop_words_ = StopWords::kNone;
    std::string stemmer_;
    bool valid_ = false;
};

TermMemo& thread_memo() {
    thread_local TermMemo memo;
    return memo;
}

}  // namespace


std::string Analyzer::filter(std::string_view token) {
    std::string term = config_.lowercase ? to_lower_utf8(token) : std::string(token);
    if (is_stop_word(config_.stop_words, term)) return {};
    if (stemmer_) {
        auto* s = static_cast<sb_stemmer*>(stemmer_.get());
        const sb_symbol* stem =
            sb_stemmer_stem(s, reinterpret_cast<const sb_symbol*>(term.data()), static_cast<int>(term.size()));
        if (stem != nullptr) term.assign(reinterpret_cast<const char*>(stem), static_cast<std::size_t>(sb_stemmer_length(s)));
    }
    return term;
}

// The terms of `text` in order: on_record(memo, r) for a term memoised as record r (a dropped token's
// included: its term is ""), on_term(std::string) for one that is not. With may_clear, a full memo is
// cleared for the next term (records already passed are then gone); without, terms met while it is full
// go to on_term. Tokens are filtered by possessive and hashed first, so that the slots and records of
// the tokens a few places ahead are fetched while the current one is looked up.
template <class OnRecord, class OnTerm>
void Analyzer::resolve(std::string_view text, bool may_clear, OnRecord&& on_record, OnTerm&& on_term) {
    scratch_.clear();
    tokenize_spans(text, config_.max_token_length, scratch_);
    TermMemo& memo = thread_memo();
    memo.use(config_);
    std::size_t n = 0;
    for (const auto& [begin, end] : scratch_) {
        std::string_view tok = text.substr(begin, end - begin);
        std::size_t strip = 0;
        if (config_.english_possessive && ends_with_possessive(tok, strip)) tok.remove_suffix(strip);
        if (!tok.empty()) scratch_[n++] = {begin, begin + static_cast<std::uint32_t>(tok.size())};
    }
    scratch_.resize(n);
    thread_local std::vector<std::uint64_t> hashes;
    hashes.resize(n);
    for (std::size_t i = 0; i < n; ++i) hashes[i] = memo.hash(text.substr(scratch_[i].first, scratch_[i].second - scratch_[i].first));
    constexpr std::size_t kSlotsAhead = 8;
    constexpr std::size_t kRecordsAhead = 4;
    for (std::size_t i = 0; i < n && i < kSlotsAhead; ++i) memo.prefetch_slot(hashes[i]);
    for (std::size_t i = 0; i < n; ++i) {
        if (i + kSlotsAhead < n) memo.prefetch_slot(hashes[i + kSlotsAhead]);
        if (i + kRecordsAhead < n) memo.prefetch_record(hashes[i + kRecordsAhead]);
        const std::string_view tok = text.substr(scratch_[i].first, scratch_[i].second - scratch_[i].first);
        const std::uint64_t h = hashes[i];
        std::uint32_t r = memo.find(tok, h);
        if (r == TermMemo::kNone) {
            std::string term = filter(tok);
            const std::size_t bytes = tok.size() + term.size();
            if (may_clear && memo.full(bytes)) memo.clear();
            if (memo.full(bytes)) {  // full, or too long to memoise at all
                on_term(std::move(term));
                continue;
            }
            r = memo.insert(tok, term, h);
        }
        on_record(memo, r);
    }
}

void Analyzer::analyze(std::string_view text, std::vector<std::string>& out) {
    resolve(
        text, true,
        [&](const TermMemo& memo, std::uint32_t r) {
            if (const std::string_view term = memo.term(r); !term.empty()) out.emplace_back(term);
        },
        [&](std::string term) {
            if (!term.empty()) out.push_back(std::move(term));
        });
}

std::uint64_t Analyzer::analyze_counts(std::span<const std::string_view> texts,
                                       std::vector<std::pair<std::string, std::uint32_t>>& out) {
    out.clear();
    TermMemo& memo = thread_memo();
    memo.use(config_);
    // Records are counted in place, so none may be cleared before the end: a memo full at the start
    // is cleared, and terms met once it is full again are kept aside (`rest`) and counted by sorting;
    // the memo is then cleared at the end, so that the next call memoises again. Counts left by a call
    // that threw (bad_alloc) are dropped first.
    memo.reset_counts();
    if (memo.full(0)) memo.clear();
    std::vector<std::string> rest;
    std::uint64_t tokens = 0;
    for (const std::string_view text : texts) {
        resolve(
            text, false,
            [&](TermMemo& m, std::uint32_t r) {
                if (m.term(r).empty()) return;  // a stop word
                ++tokens;
                if (m.count(r)++ == 0) m.counted.push_back(r);
            },
            [&](std::string term) {
                if (term.empty()) return;
                ++tokens;
                rest.push_back(std::move(term));
            });
    }
    // Distinct tokens may share a term ("Cells", "cells"): terms are merged after sorting, by their
    // first 8 bytes as a big-endian number (the byte-wise order wherever those differ), then in full.
    struct Found {
        std::uint64_t prefix;
        std::string_view term;
        std::uint32_t count;
    };
    auto found_of = [](std::string_view term, std::uint32_t count) {
        std::uint64_t prefix = 0;
        std::memcpy(&prefix, term.data(), std::min<std::size_t>(term.size(), 8));
        if constexpr (std::endian::native == std::endian::little) prefix = __builtin_bswap64(prefix);
        return Found{prefix, term, count};
    };
    std::vector<Found> found;
    found.reserve(memo.counted.size());
    for (const std::uint32_t r : memo.counted) {
        found.push_back(found_of(memo.term(r), memo.count(r)));
        memo.count(r) = 0;
    }
    memo.counted.clear();
    std::sort(rest.begin(), rest.end());
    for (std::size_t i = 0; i < rest.size();) {
        std::size_t j = i;
        while (j < rest.size() && rest[j] == rest[i]) ++j;
        found.push_back(found_of(rest[i], static_cast<std::uint32_t>(j - i)));
        i = j;
    }
    std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
        return a.prefix != b.prefix ? a.prefix < b.prefix : a.term < b.term;
    });
    for (std::size_t i = 0; i < found.size();) {
        std::uint32_t count = 0;
        std::size_t j = i;
        for (; j < found.size() && found[j].term == found[i].term; ++j) count += found[j].count;
        out.emplace_back(std::string(found[i].term), count);
        i = j;
    }
    if (!rest.empty()) memo.clear();  // it filled up: make room for the next call's terms
    return tokens;
}

}  // namespace quiver::text
