#include <limits>

#include "text/wordpiece_impl.h"
#include "text/wordpiece_unicode.h"

namespace quiver::text::detail {

namespace wu = wordpiece_unicode;

namespace {

struct Span {
    std::size_t begin;
    std::size_t end;
};

void bert_split(const std::u32string& s, const Span& in, std::vector<Span>& out) {
    std::size_t start = in.begin;
    for (std::size_t i = in.begin; i < in.end; ++i) {
        const char32_t c = s[i];
        if (wu::is_whitespace(c)) {
            if (i > start) out.push_back({start, i});
            start = i + 1;
        } else if (wu::is_punctuation(c)) {
            if (i > start) out.push_back({start, i});
            out.push_back({i, i + 1});
            start = i + 1;
        }
    }
    if (in.end > start) out.push_back({start, in.end});
}

void whitespace_split(const std::u32string& s, const Span& in, std::vector<Span>& out) {
    std::size_t start = in.begin;
    for (std::size_t i = in.begin; i < in.end; ++i) {
        if (wu::is_whitespace(s[i])) {
            if (i > start) out.push_back({start, i});
            start = i + 1;
        }
    }
    if (in.end > start) out.push_back({start, in.end});
}

}  // namespace

void TokenizerImpl::normalize(std::u32string& s) const {
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
                    for (char32_t c : s) wu::append_stripped(c, t);
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
                // Only reachable after NFD (checked at load), so decomposing here is NFD + strip.
                for (char32_t c : s) wu::append_stripped(c, t);
                break;
            case NormStep::Kind::kNfd:
                t = s;  // removed at load time; kept so the switch is exhaustive
                break;
            case NormStep::Kind::kStrip: {
                std::size_t b = 0;
                std::size_t e = s.size();
                if (step.strip_left) while (b < e && wu::is_whitespace(s[b])) ++b;
                if (step.strip_right) while (e > b && wu::is_whitespace(s[e - 1])) --e;
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
        }
        s.swap(t);
    }
}

void TokenizerImpl::run(const std::u32string& chars, std::vector<std::int32_t>& out, std::size_t max_tokens) const {
    std::u32string s = chars;
    normalize(s);
    std::vector<Span> words{{0, s.size()}};
    std::vector<Span> next;
    for (const PreStep& step : pre) {
        next.clear();
        if (step.kind == PreStep::Kind::kMetaspace) {
            // Rewrites the text: spaces become the replacement, which may also be prepended.
            std::u32string m;
            std::vector<Span> mwords;
            for (const Span& w : words) {
                const std::size_t begin = m.size();
                if (step.prepend && (w.end == w.begin || s[w.begin] != step.replacement)) m.push_back(step.replacement);
                for (std::size_t i = w.begin; i < w.end; ++i) m.push_back(s[i] == ' ' ? step.replacement : s[i]);
                if (!step.split) {
                    mwords.push_back({begin, m.size()});
                    continue;
                }
                std::size_t start = begin;
                for (std::size_t i = begin + 1; i < m.size(); ++i) {
                    if (m[i] == step.replacement) {
                        mwords.push_back({start, i});
                        start = i;
                    }
                }
                if (m.size() > start) mwords.push_back({start, m.size()});
            }
            s.swap(m);
            words.swap(mwords);
            continue;
        }
        for (const Span& w : words) {
            if (step.kind == PreStep::Kind::kBert) bert_split(s, w, next);
            else whitespace_split(s, w, next);
        }
        words.swap(next);
    }
    std::u32string word;
    const std::size_t start_size = out.size();
    for (const Span& w : words) {
        if (w.end == w.begin) continue;
        word.assign(s, w.begin, w.end - w.begin);
        if (kind == HfTokenizer::ModelKind::kWordPiece) word_pieces(word, out);
        else unigram(word, out);
        if (max_tokens != 0 && out.size() - start_size >= max_tokens) {
            out.resize(start_size + max_tokens);
            return;
        }
    }
}

void TokenizerImpl::word_pieces(const std::u32string& word, std::vector<std::int32_t>& out) const {
    if (word.size() > max_input_chars) {
        out.push_back(unk);
        return;
    }
    // UTF-8 of the word with the byte offset of every character boundary.
    std::string utf8;
    std::vector<std::size_t> offsets;
    offsets.reserve(word.size() + 1);
    for (char32_t c : word) {
        offsets.push_back(utf8.size());
        wu::append_utf8(c, utf8);
    }
    offsets.push_back(utf8.size());
    const std::size_t first = out.size();
    std::string piece;
    std::size_t start = 0;
    while (start < word.size()) {
        std::size_t end = word.size();
        std::int32_t found = -1;
        while (start < end) {
            piece.clear();
            if (start > 0) piece = continuing_prefix;
            piece.append(utf8, offsets[start], offsets[end] - offsets[start]);
            if (auto it = vocab.find(piece); it != vocab.end()) {
                found = it->second;
                break;
            }
            --end;
        }
        if (found < 0) {
            out.resize(first);
            out.push_back(unk);
            return;
        }
        out.push_back(found);
        start = end;
    }
}

void TokenizerImpl::unigram(const std::u32string& word, std::vector<std::int32_t>& out) const {
    // Viterbi over character positions: best[i] = best total score of a segmentation of word[0, i).
    const std::size_t n = word.size();
    const double unk_score = min_score - 10.0;
    std::vector<double> best(n + 1, -std::numeric_limits<double>::infinity());
    std::vector<std::int32_t> best_id(n + 1, -1);
    std::vector<std::size_t> best_start(n + 1, 0);
    best[0] = 0.0;
    std::string utf8;
    std::vector<std::size_t> offsets;
    for (char32_t c : word) {
        offsets.push_back(utf8.size());
        wu::append_utf8(c, utf8);
    }
    offsets.push_back(utf8.size());
    std::string piece;
    for (std::size_t i = 0; i < n; ++i) {
        if (best[i] == -std::numeric_limits<double>::infinity()) continue;
        bool single = false;
        const std::size_t max_end = std::min(n, i + max_piece_chars);
        for (std::size_t e = i + 1; e <= max_end; ++e) {
            piece.assign(utf8, offsets[i], offsets[e] - offsets[i]);
            auto it = vocab.find(piece);
            if (it == vocab.end()) continue;
            if (e == i + 1) single = true;
            const double sc = best[i] + scores[static_cast<std::size_t>(it->second)];
            if (sc > best[e]) {
                best[e] = sc;
                best_id[e] = it->second;
                best_start[e] = i;
            }
        }
        if (!single) {
            const double sc = best[i] + unk_score;
            if (sc > best[i + 1]) {
                best[i + 1] = sc;
                best_id[i + 1] = unk;
                best_start[i + 1] = i;
            }
        }
    }
    std::vector<std::int32_t> rev;
    for (std::size_t e = n; e > 0; e = best_start[e]) {
        // Consecutive unknown characters fuse into one unk, as the tokenizers library does.
        if (best_id[e] == unk && unk >= 0 && !rev.empty() && rev.back() == unk) continue;
        rev.push_back(best_id[e]);
    }
    for (auto it = rev.rbegin(); it != rev.rend(); ++it) {
        if (*it >= 0) out.push_back(*it);
    }
}

}  // namespace quiver::text::detail
