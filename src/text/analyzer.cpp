#include "quiver/text/analyzer.h"

#include <fmt/format.h>
#include <libstemmer.h>
#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>

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

// Index of the next non-Extend character at or after i.
std::size_t skip_extend(const std::vector<Char>& cs, std::size_t i) {
    while (i < cs.size() && cs[i].cls == Cls::kExtend) ++i;
    return i;
}

// Emits [begin, end) characters as one or more tokens of at most max_len code points.
void emit(std::string_view text, const std::vector<Char>& cs, std::size_t begin, std::size_t end,
          std::uint32_t max_len, std::vector<std::string>& out) {
    for (std::size_t s = begin; s < end; s += max_len) {
        const std::size_t e = std::min<std::size_t>(end, s + max_len);
        out.emplace_back(text.substr(cs[s].begin, cs[e - 1].end - cs[s].begin));
    }
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
    thread_local std::vector<Char> cs;
    decode(text, cs);
    const std::size_t n = cs.size();
    std::size_t i = 0;
    while (i < n) {
        const Cls c = cs[i].cls;
        if (c == Cls::kIdeo) {
            const std::size_t e = skip_extend(cs, i + 1);
            emit(text, cs, i, e, max_token_length, out);
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
        std::size_t j = skip_extend(cs, i + 1);  // one past the token so far
        while (j < n) {
            const Cls next = cs[j].cls;
            const bool joins =
                (next == Cls::kExtendNumLet && (is_word(left) || left == Cls::kExtendNumLet)) ||
                (left == Cls::kExtendNumLet && is_word(next)) ||
                ((left == Cls::kLetter || left == Cls::kNumeric) && (next == Cls::kLetter || next == Cls::kNumeric)) ||
                (left == Cls::kKatakana && next == Cls::kKatakana);
            if (joins) {
                left = next;
                has_word = has_word || is_word(next);
                j = skip_extend(cs, j + 1);
                continue;
            }
            // WB6/7 and WB11/12: a single middle character between two letters or two digits.
            const std::size_t after = skip_extend(cs, j + 1);
            if (after < n) {
                const Cls far = cs[after].cls;
                const bool mid_letter = left == Cls::kLetter && far == Cls::kLetter &&
                                        (next == Cls::kMidLetter || next == Cls::kMidNumLet || next == Cls::kSingleQuote);
                const bool mid_num = left == Cls::kNumeric && far == Cls::kNumeric &&
                                     (next == Cls::kMidNum || next == Cls::kMidNumLet || next == Cls::kSingleQuote);
                if (mid_letter || mid_num) {
                    left = far;
                    j = skip_extend(cs, after + 1);
                    continue;
                }
            }
            break;
        }
        if (has_word) emit(text, cs, start, j, max_token_length, out);
        i = j;
    }
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
// chain computes. Stemming is most of an analysis's cost, and text repeats its words. Bounded: cleared
// at kMaxTerms entries, and when the thread analyses with other settings.
struct TermMemo {
    static constexpr std::size_t kMaxTerms = 1 << 15;
    bool lowercase = false;
    StopWords stop_words = StopWords::kNone;
    std::string stemmer;
    bool valid = false;
    std::unordered_map<std::string, std::string> terms;  // token -> term ("" = dropped)
};

}  // namespace

void Analyzer::analyze(std::string_view text, std::vector<std::string>& out) {
    scratch_.clear();
    tokenize_standard(text, config_.max_token_length, scratch_);
    thread_local TermMemo memo;
    if (!memo.valid || memo.lowercase != config_.lowercase || memo.stop_words != config_.stop_words ||
        memo.stemmer != config_.stemmer) {
        memo.terms.clear();
        memo.lowercase = config_.lowercase;
        memo.stop_words = config_.stop_words;
        memo.stemmer = config_.stemmer;
        memo.valid = true;
    }
    for (std::string& tok : scratch_) {
        std::size_t strip = 0;
        if (config_.english_possessive && ends_with_possessive(tok, strip)) tok.resize(tok.size() - strip);
        if (tok.empty()) continue;
        if (const auto it = memo.terms.find(tok); it != memo.terms.end()) {
            if (!it->second.empty()) out.push_back(it->second);
            continue;
        }
        std::string term = config_.lowercase ? to_lower_utf8(tok) : tok;
        if (is_stop_word(config_.stop_words, term)) {
            term.clear();
        } else if (stemmer_) {
            auto* s = static_cast<sb_stemmer*>(stemmer_.get());
            const sb_symbol* stem = sb_stemmer_stem(s, reinterpret_cast<const sb_symbol*>(term.data()),
                                                    static_cast<int>(term.size()));
            if (stem != nullptr) {
                const int len = sb_stemmer_length(s);
                term.assign(reinterpret_cast<const char*>(stem), static_cast<std::size_t>(len));
            }
        }
        if (memo.terms.size() >= TermMemo::kMaxTerms) memo.terms.clear();
        memo.terms.emplace(std::move(tok), term);
        if (!term.empty()) out.push_back(std::move(term));
    }
}

}  // namespace quiver::text
