// The Hugging Face tokenizer pipeline: added tokens, normalisers and pre-tokenisers.
#include <algorithm>
#include <array>

#include "text/wordpiece_impl.h"
#include "text/wordpiece_unicode.h"

namespace quiver::text::detail {

namespace wu = wordpiece_unicode;

namespace {

struct Span {
    std::size_t begin;
    std::size_t end;
    bool match;
};

// Matches of a one-character predicate: every matching character is a match of its own, the text
// between them one non-match (tokenizers' Pattern for Fn(char) -> bool).
template <typename Pred>
void char_matches(const std::u32string& s, Pred pred, std::vector<Span>& out) {
    std::size_t last = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (!pred(s[i])) continue;
        if (last < i) out.push_back({last, i, false});
        out.push_back({i, i + 1, true});
        last = i + 1;
    }
    if (last < s.size()) out.push_back({last, s.size(), false});
}

void string_matches(const std::u32string& s, const std::u32string& pattern, std::vector<Span>& out) {
    std::size_t last = 0;
    std::size_t i = 0;
    while (!pattern.empty() && i + pattern.size() <= s.size()) {
        if (s.compare(i, pattern.size(), pattern) == 0) {
            if (last < i) out.push_back({last, i, false});
            out.push_back({i, i + pattern.size(), true});
            i += pattern.size();
            last = i;
        } else {
            ++i;
        }
    }
    if (last < s.size()) out.push_back({last, s.size(), false});
}

bool is_newline(char32_t c) { return c == '\r' || c == '\n'; }

// One match of a known pre-tokenisation regex at position i (which always matches: every pattern
// ends in \s+ and covers letters, numbers and everything else). Returns the match end.
std::size_t regex_match_at(const std::u32string& s, std::size_t i, KnownRegex re) {
    const std::size_t n = s.size();
    auto L = [&](std::size_t k) { return k < n && wu::is_letter(s[k]); };
    auto N = [&](std::size_t k) { return k < n && wu::is_number(s[k]); };
    auto W = [&](std::size_t k) { return k < n && wu::is_whitespace(s[k]); };
    auto other = [&](std::size_t k) { return k < n && !wu::is_whitespace(s[k]) && !wu::is_letter(s[k]) && !wu::is_number(s[k]); };
    auto run = [&](std::size_t k, auto pred) {
        while (pred(k)) ++k;
        return k;
    };
    // Contractions: 's 't 're 've 'm 'll 'd (case-insensitive for the Llama 3 / Qwen 2 patterns).
    if (s[i] == '\'' && i + 1 < n) {
        const bool fold = re != KnownRegex::kGpt2;
        auto is = [&](std::size_t k, char lower) {
            if (k >= n) return false;
            const char32_t c = s[k];
            if (c == static_cast<char32_t>(lower)) return true;
            if (!fold) return false;
            if (c == static_cast<char32_t>(lower - 32)) return true;
            return lower == 's' && c == 0x17F;  // LATIN SMALL LETTER LONG S folds to s
        };
        if (is(i + 1, 's') || is(i + 1, 't') || is(i + 1, 'm') || is(i + 1, 'd')) return i + 2;
        if ((is(i + 1, 'r') && is(i + 2, 'e')) || (is(i + 1, 'v') && is(i + 2, 'e')) ||
            (is(i + 1, 'l') && is(i + 2, 'l'))) {
            return i + 3;
        }
    }
    if (re == KnownRegex::kGpt2) {
        // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+'
        const std::size_t j = s[i] == ' ' ? i + 1 : i;
        if (L(j)) return run(j, L);
        if (N(j)) return run(j, N);
        if (other(j)) return run(j, other);
    } else {
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (i + 1 < n && !is_newline(s[i]) && !wu::is_letter(s[i]) && !wu::is_number(s[i]) && L(i + 1)) {
            return run(i + 1, L);
        }
        if (L(i)) return run(i, L);
        // \p{N}{1,3} (Llama 3) or \p{N} (Qwen 2)
        if (N(i)) {
            const std::size_t cap = re == KnownRegex::kLlama3 ? 3 : 1;
            std::size_t k = i;
            while (k - i < cap && N(k)) ++k;
            return k;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        const std::size_t j = s[i] == ' ' ? i + 1 : i;
        if (other(j)) return run(run(j, other), [&](std::size_t k) { return k < n && is_newline(s[k]); });
        // \s*[\r\n]+ : the whitespace run up to and including its last newline
        if (W(i)) {
            const std::size_t k = run(i, W);
            for (std::size_t m = k; m > i; --m) {
                if (is_newline(s[m - 1])) return m;
            }
        }
    }
    // \s+(?!\S)|\s+
    if (W(i)) {
        const std::size_t k = run(i, W);
        if (k == n || k - i == 1) return k;
        return k - 1;
    }
    return i + 1;  // unreachable for valid patterns; keeps the scan moving
}

void regex_matches(const std::u32string& s, KnownRegex re, std::vector<Span>& out) {
    std::size_t i = 0;
    while (i < s.size()) {
        const std::size_t e = regex_match_at(s, i, re);
        out.push_back({i, e, true});
        i = e;
    }
}

// NormalizedString::split: turns matches into pieces according to the behaviour.
void apply_behavior(const std::vector<Span>& matches, Behavior b, std::vector<Span>& pieces) {
    pieces.clear();
    switch (b) {
        case Behavior::kIsolated:
            for (const Span& m : matches) pieces.push_back({m.begin, m.end, false});
            break;
        case Behavior::kRemoved:
            for (const Span& m : matches) {
                if (!m.match) pieces.push_back({m.begin, m.end, false});
            }
            break;
        case Behavior::kContiguous: {
            bool prev = false;
            for (const Span& m : matches) {
                if (m.match == prev && !pieces.empty()) pieces.back().end = m.end;
                else pieces.push_back({m.begin, m.end, false});
                prev = m.match;
            }
            break;
        }
        case Behavior::kMergedWithPrevious: {
            bool prev = false;
            for (const Span& m : matches) {
                if (m.match && !prev && !pieces.empty()) pieces.back().end = m.end;
                else pieces.push_back({m.begin, m.end, false});
                prev = m.match;
            }
            break;
        }
        case Behavior::kMergedWithNext: {
            bool prev = false;
            for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
                if (it->match && !prev && !pieces.empty()) pieces.back().begin = it->begin;
                else pieces.push_back({it->begin, it->end, false});
                prev = it->match;
            }
            std::reverse(pieces.begin(), pieces.end());
            break;
        }
    }
}

struct Piece {
    std::u32string text;
    bool first;  // begins at offset 0 of the original input
};

void byte_level_chars(const std::u32string& s, std::u32string& out) {
    std::string utf8;
    for (char32_t c : s) {
        utf8.clear();
        wu::append_utf8(c, utf8);
        for (char b : utf8) out.push_back(byte_char(static_cast<std::uint8_t>(b)));
    }
}

// One pre-tokenizer over every current piece.
void pre_tokenize_step(const PreStep& step, std::vector<Piece>& pieces) {
    std::vector<Piece> next;
    std::vector<Span> matches;
    std::vector<Span> spans;
    for (Piece& p : pieces) {
        std::u32string& s = p.text;
        matches.clear();
        Behavior behavior = step.behavior;
        switch (step.kind) {
            case PreStep::Kind::kBert: {
                // Whitespace removed, then punctuation isolated.
                std::vector<Span> ws;
                char_matches(s, [](char32_t c) { return wu::is_whitespace(c); }, ws);
                std::vector<Span> words;
                apply_behavior(ws, Behavior::kRemoved, words);
                for (const Span& w : words) {
                    std::u32string sub = s.substr(w.begin, w.end - w.begin);
                    std::vector<Span> pm;
                    char_matches(sub, [](char32_t c) { return wu::is_punctuation(c); }, pm);
                    for (const Span& m : pm) {
                        if (m.end > m.begin) next.push_back({sub.substr(m.begin, m.end - m.begin), p.first && w.begin + m.begin == 0});
                    }
                }
                continue;
            }
            case PreStep::Kind::kWhitespace: {
                // \w+|[^\w\s]+ kept, the rest (whitespace) removed.
                std::size_t i = 0;
                while (i < s.size()) {
                    std::size_t j = i;
                    if (wu::is_word(s[i])) {
                        while (j < s.size() && wu::is_word(s[j])) ++j;
                    } else if (!wu::is_whitespace(s[i])) {
                        while (j < s.size() && !wu::is_word(s[j]) && !wu::is_whitespace(s[j])) ++j;
                    } else {
                        ++i;
                        continue;
                    }
                    next.push_back({s.substr(i, j - i), p.first && i == 0});
                    i = j;
                }
                continue;
            }
            case PreStep::Kind::kWhitespaceSplit:
                char_matches(s, [](char32_t c) { return wu::is_whitespace(c); }, matches);
                behavior = Behavior::kRemoved;
                break;
            case PreStep::Kind::kPunctuation:
                char_matches(s, [](char32_t c) { return wu::is_punctuation(c); }, matches);
                break;
            case PreStep::Kind::kDigits:
                char_matches(s, [](char32_t c) { return wu::is_number(c); }, matches);
                behavior = step.individual_digits ? Behavior::kIsolated : Behavior::kContiguous;
                break;
            case PreStep::Kind::kCharDelimiter:
                char_matches(s, [&](char32_t c) { return c == step.pattern[0]; }, matches);
                behavior = Behavior::kRemoved;
                break;
            case PreStep::Kind::kSplitString:
                string_matches(s, step.pattern, matches);
                break;
            case PreStep::Kind::kSplitRegex:
                regex_matches(s, step.regex, matches);
                break;
            case PreStep::Kind::kMetaspace: {
                for (char32_t& c : s) {
                    if (c == ' ') c = step.replacement;
                }
                const bool prepend = step.prepend == PreStep::Prepend::kAlways ||
                                     (step.prepend == PreStep::Prepend::kFirst && p.first);
                if (prepend && !s.empty() && s[0] != step.replacement) s.insert(s.begin(), step.replacement);
                if (!step.split) {
                    next.push_back(std::move(p));
                    continue;
                }
                char_matches(s, [&](char32_t c) { return c == step.replacement; }, matches);
                behavior = Behavior::kMergedWithNext;
                break;
            }
            case PreStep::Kind::kByteLevel: {
                if (step.add_prefix_space && !s.empty() && s[0] != ' ') s.insert(s.begin(), ' ');
                if (step.use_regex) {
                    regex_matches(s, KnownRegex::kGpt2, matches);
                } else {
                    matches.push_back({0, s.size(), false});
                }
                apply_behavior(matches, Behavior::kIsolated, spans);
                for (const Span& sp : spans) {
                    if (sp.end == sp.begin) continue;
                    Piece q{{}, p.first && sp.begin == 0};
                    byte_level_chars(s.substr(sp.begin, sp.end - sp.begin), q.text);
                    next.push_back(std::move(q));
                }
                continue;
            }
        }
        if (step.invert) {
            for (Span& m : matches) m.match = !m.match;
        }
        apply_behavior(matches, behavior, spans);
        for (const Span& sp : spans) {
            if (sp.end > sp.begin) next.push_back({s.substr(sp.begin, sp.end - sp.begin), p.first && sp.begin == 0});
        }
    }
    pieces.swap(next);
}

}  // namespace

char32_t byte_char(std::uint8_t b) noexcept {
    // Printable bytes map to themselves, the other 68 to 256, 257, ... in byte order.
    static const auto table = [] {
        std::array<char32_t, 256> t{};
        char32_t next = 256;
        for (unsigned x = 0; x < 256; ++x) {
            const bool printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
            t[x] = printable ? x : next++;
        }
        return t;
    }();
    return table[b];
}

void AddedMatcher::build(const std::vector<AddedToken>& tokens, bool normalized) {
    nodes_.assign(1, Node{});
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        if (tokens[t].normalized != normalized || tokens[t].content.empty()) continue;
        std::int32_t node = 0;
        for (char32_t c : tokens[t].content) {
            auto& next = nodes_[static_cast<std::size_t>(node)].next;
            auto it = std::lower_bound(next.begin(), next.end(), c,
                                       [](const std::pair<char32_t, std::int32_t>& e, char32_t v) { return e.first < v; });
            if (it != next.end() && it->first == c) {
                node = it->second;
            } else {
                const auto child = static_cast<std::int32_t>(nodes_.size());
                next.insert(it, {c, child});
                nodes_.emplace_back();
                node = child;
            }
        }
        // A later duplicate of the same content wins, as in the tokenizers library's map.
        nodes_[static_cast<std::size_t>(node)].token = static_cast<std::int32_t>(t);
    }
}

namespace {

// Character access for the matcher over decoded (u32) and UTF-8 text; offsets are code units.
struct U32Text {
    const std::u32string& s;
    std::size_t size() const { return s.size(); }
    char32_t at(std::size_t i, std::size_t& next) const {
        next = i + 1;
        return s[i];
    }
    char32_t before(std::size_t i, std::size_t& prev) const {
        prev = i - 1;
        return s[i - 1];
    }
};

struct Utf8Text {
    std::string_view s;
    std::size_t size() const { return s.size(); }
    char32_t at(std::size_t i, std::size_t& next) const {
        const auto b = static_cast<unsigned char>(s[i]);
        std::size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
        char32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
        for (std::size_t k = 1; k < len; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
        next = i + len;
        return c;
    }
    char32_t before(std::size_t i, std::size_t& prev) const {
        std::size_t p = i - 1;
        while (p > 0 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
        prev = p;
        std::size_t ignored = 0;
        return at(p, ignored);
    }
};

}  // namespace

template <typename Text>
bool AddedMatcher::find(const Text& s, std::size_t from, std::size_t start_offset, const std::vector<AddedToken>& tokens,
                        Match& out, std::size_t horizon) const {
    if (empty()) return false;
    std::size_t i = from;
    while (i < std::min(horizon, s.size())) {
        // Longest match starting at i.
        std::int32_t node = 0;
        std::int32_t best = -1;
        std::size_t best_end = 0;
        std::size_t first_next = 0;
        for (std::size_t k = i; k < s.size();) {
            std::size_t nk = 0;
            const char32_t c = s.at(k, nk);
            if (k == i) first_next = nk;
            const auto& next = nodes_[static_cast<std::size_t>(node)].next;
            auto it = std::lower_bound(next.begin(), next.end(), c,
                                       [](const std::pair<char32_t, std::int32_t>& e, char32_t v) { return e.first < v; });
            if (it == next.end() || it->first != c) break;
            node = it->second;
            k = nk;
            if (nodes_[static_cast<std::size_t>(node)].token >= 0) {
                best = nodes_[static_cast<std::size_t>(node)].token;
                best_end = k;
            }
        }
        if (best < 0) {
            if (first_next == 0) s.at(i, first_next);
            i = first_next;
            continue;
        }
        const AddedToken& tok = tokens[static_cast<std::size_t>(best)];
        std::size_t start = i;
        std::size_t stop = best_end;
        i = best_end;
        std::size_t step = 0;
        if (tok.single_word) {
            const bool start_ok = start == 0 || !wu::is_word(s.before(start, step));
            const bool stop_ok = stop == s.size() || !wu::is_word(s.at(stop, step));
            if (!start_ok || !stop_ok) continue;
        }
        if (tok.lstrip) {
            std::size_t b = start;
            while (b > 0) {
                std::size_t prev = 0;
                if (!wu::is_whitespace(s.before(b, prev))) break;
                b = prev;
            }
            start = std::max(b, start_offset);
        }
        if (tok.rstrip) {
            while (stop < s.size()) {
                std::size_t nx = 0;
                if (!wu::is_whitespace(s.at(stop, nx))) break;
                stop = nx;
            }
        }
        out = {start, stop, best, best_end};
        return true;
    }
    return false;
}

bool AddedMatcher::next(std::string_view s, std::size_t from, std::size_t start_offset,
                        const std::vector<AddedToken>& tokens, Match& out, std::size_t horizon) const {
    return find(Utf8Text{s}, from, start_offset, tokens, out, horizon);
}

void AddedMatcher::split(const std::u32string& s, const std::vector<AddedToken>& tokens, std::vector<Match>& out) const {
    out.clear();
    std::size_t start_offset = 0;
    std::size_t from = 0;
    Match m{};
    while (find(U32Text{s}, from, start_offset, tokens, m, s.size())) {
        if (start_offset < m.begin) out.push_back({start_offset, m.begin, -1, 0});
        out.push_back(m);
        start_offset = m.end;
        from = m.search_end;
    }
    if (start_offset < s.size()) out.push_back({start_offset, s.size(), -1, 0});
}

void TokenizerImpl::normalize(std::u32string& s, bool first_chunk, bool last_chunk) const {
    std::u32string t;
    for (const NormStep& step : norm) {
        t.clear();
        t.reserve(s.size() + 8);
        switch (step.kind) {
            case NormStep::Kind::kBert: {
                for (char32_t c : s) {
                    if (step.clean_text) {
                        if (c == 0 || c == 0xFFFD || wu::is_control(c)) continue;
                        if (wu::is_whitespace(c)) c = ' ';
                    }
                    if (step.chinese && wu::is_cjk(c)) {
                        t.push_back(' ');
                        t.push_back(c);
                        t.push_back(' ');
                    } else {
                        t.push_back(c);
                    }
                }
                if (step.strip_accents) {
                    s.swap(t);
                    t.clear();
                    wu::bert_strip_accents(s, t);
                }
                if (step.lowercase) {
                    s.swap(t);
                    t.clear();
                    for (char32_t c : s) wu::append_lower(c, t);
                }
                break;
            }
            case NormStep::Kind::kLowercase:
                for (char32_t c : s) wu::append_lower(c, t);
                break;
            case NormStep::Kind::kStripAccents:
                for (char32_t c : s) {
                    if (!wu::is_combining_mark(c)) t.push_back(c);
                }
                break;
            case NormStep::Kind::kNfd: t = wu::normalize(s, wu::Form::kNfd); break;
            case NormStep::Kind::kNfkd: t = wu::normalize(s, wu::Form::kNfkd); break;
            case NormStep::Kind::kNfc: t = wu::normalize(s, wu::Form::kNfc); break;
            case NormStep::Kind::kNfkc: t = wu::normalize(s, wu::Form::kNfkc); break;
            case NormStep::Kind::kStrip: {
                std::size_t b = 0;
                std::size_t e = s.size();
                if (step.strip_left && first_chunk) while (b < e && wu::is_whitespace(s[b])) ++b;
                if (step.strip_right && last_chunk) while (e > b && wu::is_whitespace(s[e - 1])) --e;
                t.assign(s, b, e - b);
                break;
            }
            case NormStep::Kind::kReplace: {
                std::size_t i = 0;
                while (i < s.size()) {
                    if (s.compare(i, step.from.size(), step.from) == 0) {
                        t += step.to;
                        i += step.from.size();
                    } else {
                        t.push_back(s[i++]);
                    }
                }
                break;
            }
            case NormStep::Kind::kCollapseWhitespace: {
                bool in_ws = false;
                for (char32_t c : s) {
                    if (wu::is_whitespace(c)) {
                        if (!in_ws) t += step.to;
                        in_ws = true;
                    } else {
                        t.push_back(c);
                        in_ws = false;
                    }
                }
                break;
            }
            case NormStep::Kind::kCollapseSpaces: {
                std::size_t i = 0;
                while (i < s.size()) {
                    std::size_t j = i;
                    while (j < s.size() && s[j] == ' ') ++j;
                    if (j - i >= 2) {
                        t += step.to;
                        i = j;
                    } else {
                        t.push_back(s[i++]);
                    }
                }
                break;
            }
            case NormStep::Kind::kPrecompiled:
                step.charsmap->normalize(s, t);
                break;
            case NormStep::Kind::kPrepend:
                if (!s.empty()) t = step.to;
                t += s;
                break;
            case NormStep::Kind::kByteLevel:
                byte_level_chars(s, t);
                break;
        }
        s.swap(t);
    }
}

Status TokenizerImpl::run(std::string_view text, Sink& sink) const {
    // Raw added tokens are searched for one window at a time, and the text between them is tokenised
    // chunk by chunk (see segment), so with a limit a long text is read only as far as needed.
    constexpr std::size_t kWindow = std::size_t{1} << 16;
    const bool streaming = sink.limit != 0 && chunkable;
    std::size_t start_offset = 0;  // end of the last match: the current segment begins here
    std::size_t cursor = 0;        // how far the current segment has been tokenised
    std::size_t from = 0;
    AddedMatcher::Match m{};
    while (!sink.full()) {
        const std::size_t horizon = streaming ? std::min(text.size(), from + kWindow) : text.size();
        const bool found = raw_matcher.next(text, from, start_offset, added, m, horizon);
        if (!found && horizon < text.size()) {
            // No match starts before the horizon: the segment reaches at least that far.
            QUIVER_TRY(segment(text, start_offset, cursor, horizon, false, sink));
            from = horizon;
            continue;
        }
        const std::size_t seg_end = found ? std::max(m.begin, start_offset) : text.size();
        QUIVER_TRY(segment(text, start_offset, cursor, seg_end, true, sink));
        if (!found || sink.full()) break;
        sink.push(added[static_cast<std::size_t>(m.token)].id, text.substr(m.begin, m.end - m.begin));
        start_offset = cursor = m.end;
        from = m.search_end;
    }
    if (sink.full()) {
        sink.ids.resize(sink.start + sink.limit);
        if (sink.tokens != nullptr) sink.tokens->resize(sink.tokens_start + sink.limit);
    }
    return ok_status();
}

// Tokenises the segment that starts at byte `begin` (text between raw added tokens) from `cursor` up
// to `end`; `final` says the segment ends there, otherwise only whole chunks before `end` are done and
// `cursor` says how far. With a token limit the segment is decoded, normalised and tokenised in
// chunks, so a huge text stops as soon as the limit is reached: a chunk ends before a space that
// follows a non-space, a cut that changes no normaliser's or pre-tokeniser's output (none of them
// joins across such a space; `chunkable` is false for the configurations where one could). With a
// Precompiled charsmap the character before the space must also be an ASCII letter or digit that no
// key starts with (`cut_after`): a charsmap works on grapheme clusters and may map other characters
// to spaces.
Status TokenizerImpl::segment(std::string_view s, std::size_t begin, std::size_t& cursor, std::size_t end, bool final,
                              Sink& sink) const {
    constexpr std::size_t kChunkBytes = 8192;
    std::vector<AddedMatcher::Match> splits;
    std::size_t bad = 0;
    while (cursor < end && !sink.full()) {
        const std::size_t cb = cursor;
        std::size_t ce = end;
        if (sink.limit != 0 && chunkable && end - cb > kChunkBytes) {
            ce = cb + kChunkBytes;
            while (ce < end) {
                if (s[ce] == ' ') {
                    std::size_t prev = 0;
                    const char32_t p = Utf8Text{s}.before(ce, prev);
                    if (!wu::is_whitespace(p) && (!cut_after_ascii_only || (p < 128 && cut_after[p]))) break;
                }
                ++ce;
            }
        }
        if (!final && ce >= end) break;  // the rest may continue past `end`
        std::u32string t;
        wu::decode_utf8(s.substr(cb, ce - cb), t, &bad);  // valid: checked by the caller
        normalize(t, cb == begin, final && ce == end);
        const bool first = begin == 0 && cb == begin;
        if (normalized_matcher.empty()) {
            QUIVER_TRY(piece(std::move(t), first, sink));
        } else {
            normalized_matcher.split(t, added, splits);
            for (const auto& m : splits) {
                if (sink.full()) break;
                if (m.token >= 0) {
                    sink.push(added[static_cast<std::size_t>(m.token)].id,
                              wu::to_utf8(std::u32string_view(t).substr(m.begin, m.end - m.begin)));
                } else {
                    QUIVER_TRY(piece(t.substr(m.begin, m.end - m.begin), first && m.begin == 0, sink));
                }
            }
        }
        cursor = ce;
    }
    return ok_status();
}

Status TokenizerImpl::piece(std::u32string text, bool first, Sink& sink) const {
    if (text.empty()) return ok_status();
    std::vector<Piece> pieces;
    pieces.push_back({std::move(text), first});
    for (const PreStep& step : pre) pre_tokenize_step(step, pieces);
    for (const Piece& p : pieces) {
        if (sink.full()) break;
        if (!p.text.empty()) QUIVER_TRY(model(p.text, sink));
    }
    return ok_status();
}

}  // namespace quiver::text::detail
