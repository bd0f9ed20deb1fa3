// The three tokenizer models: WordPiece (BERT), BPE (GPT-2 style, byte-level or not) and Unigram
// (SentencePiece), each as the Hugging Face tokenizers library runs it.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <limits>
#include <queue>

#include "text/wordpiece_impl.h"
#include "text/wordpiece_unicode.h"

namespace quiver::text::detail {

namespace wu = wordpiece_unicode;

Status TokenizerImpl::model(const std::u32string& word, Sink& sink) const {
    switch (kind) {
        case HfTokenizer::ModelKind::kWordPiece:
            word_pieces(word, sink);
            return ok_status();
        case HfTokenizer::ModelKind::kBpe:
            bpe(wu::to_utf8(word), sink);
            return ok_status();
        case HfTokenizer::ModelKind::kUnigram:
            return unigram(word, sink);
    }
    return ok_status();
}

void TokenizerImpl::word_pieces(const std::u32string& word, Sink& sink) const {
    if (word.size() > max_input_chars) {
        sink.push(unk, tokens[static_cast<std::size_t>(unk)]);
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
    std::vector<std::int32_t> found_ids;
    std::string piece;
    std::size_t start = 0;
    while (start < word.size()) {
        std::size_t end = std::min(word.size(), start + max_token_chars);
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
            sink.push(unk, tokens[static_cast<std::size_t>(unk)]);
            return;
        }
        found_ids.push_back(found);
        start = end;
    }
    for (std::int32_t id : found_ids) sink.push(id, tokens[static_cast<std::size_t>(id)]);
}

namespace {

struct Symbol {
    std::int32_t id;
    std::int32_t prev;
    std::int32_t next;
    std::size_t len;  // bytes; 0 once merged into its left neighbour
};

struct Merge {
    std::uint32_t rank;
    std::size_t pos;
    std::int32_t new_id;
    // Lowest rank first, then leftmost.
    bool operator<(const Merge& o) const noexcept { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

std::uint64_t pair_key(std::int32_t a, std::int32_t b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

std::size_t utf8_len(unsigned char b) noexcept {
    if (b < 0x80) return 1;
    if ((b & 0xE0) == 0xC0) return 2;
    if ((b & 0xF0) == 0xE0) return 3;
    return 4;
}

// Words seen recently by this thread, per tokenizer: merging is the costly part of BPE and text
// repeats its words. Bounded like the library's cache (words under 256 bytes, 10000 of them).
struct BpeCache {
    std::uint64_t owner = 0;
    std::unordered_map<std::string, std::vector<std::int32_t>> words;
};

std::atomic<std::uint64_t> next_cache_id{1};

}  // namespace

std::uint64_t new_bpe_cache_id() noexcept { return next_cache_id.fetch_add(1); }

void TokenizerImpl::bpe(const std::string& w, Sink& sink) const {
    if (w.empty()) return;
    thread_local BpeCache cache;
    const bool cacheable = w.size() < 256;
    if (cacheable) {
        if (cache.owner != cache_id) {
            cache.owner = cache_id;
            cache.words.clear();
        }
        if (auto hit = cache.words.find(w); hit != cache.words.end()) {
            for (std::int32_t id : hit->second) sink.push(id, tokens[static_cast<std::size_t>(id)]);
            return;
        }
    }
    std::vector<std::int32_t> out = bpe_merge(w);
    for (std::int32_t id : out) sink.push(id, tokens[static_cast<std::size_t>(id)]);
    if (cacheable && cache.words.size() < 10000) cache.words.emplace(w, std::move(out));
}

std::vector<std::int32_t> TokenizerImpl::bpe_merge(const std::string& w) const {
    std::vector<std::int32_t> result;
    if (ignore_merges) {
        if (auto it = vocab.find(w); it != vocab.end()) {
            result.push_back(it->second);
            return result;
        }
    }
    // The word as symbols: one per character (with the continuing prefix / end-of-word suffix), byte
    // fallback tokens for characters outside the vocabulary, or [UNK] (fused when fuse_unk).
    std::vector<Symbol> symbols;
    auto add = [&](std::int32_t id, std::size_t len) {
        const auto n = static_cast<std::int32_t>(symbols.size());
        symbols.push_back({id, n - 1, n + 1, len});
    };
    std::int32_t pending_unk = -1;
    std::size_t pending_len = 0;
    std::string s;
    for (std::size_t i = 0; i < w.size();) {
        const std::size_t len = std::min(utf8_len(static_cast<unsigned char>(w[i])), w.size() - i);
        s.clear();
        if (i > 0) s = bpe_prefix;
        s.append(w, i, len);
        if (i + len == w.size()) s += bpe_suffix;
        if (auto it = vocab.find(s); it != vocab.end()) {
            if (pending_unk >= 0) {
                add(pending_unk, pending_len);
                pending_unk = -1;
            }
            add(it->second, len);
            i += len;
            continue;
        }
        if (byte_fallback) {
            std::vector<std::int32_t> bytes;
            for (unsigned char b : s) {
                auto it = vocab.find(fmt::format("<0x{:02X}>", b));
                if (it == vocab.end()) break;
                bytes.push_back(it->second);
            }
            if (bytes.size() == s.size()) {
                for (std::int32_t id : bytes) add(id, 1);
                i += len;
                continue;
            }
        }
        if (unk >= 0) {
            if (pending_unk >= 0 && fuse_unk) {
                pending_len += len;
            } else {
                if (pending_unk >= 0) add(pending_unk, pending_len);
                pending_unk = unk;
                pending_len = len;
            }
        }
        i += len;
    }
    if (pending_unk >= 0) add(pending_unk, pending_len);
    if (symbols.empty()) return result;
    symbols.back().next = -1;

    std::priority_queue<Merge> queue;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
        if (auto it = merges.find(pair_key(symbols[i].id, symbols[i + 1].id)); it != merges.end()) {
            queue.push({it->second.first, i, it->second.second});
        }
    }
    while (!queue.empty()) {
        const Merge top = queue.top();
        queue.pop();
        Symbol& cur = symbols[top.pos];
        if (cur.len == 0 || cur.next < 0) continue;
        const auto next_pos = static_cast<std::size_t>(cur.next);
        const Symbol right = symbols[next_pos];
        auto it = merges.find(pair_key(cur.id, right.id));
        if (it == merges.end() || it->second.second != top.new_id) continue;  // stale entry
        cur.id = top.new_id;
        cur.len += right.len;
        cur.next = right.next;
        symbols[next_pos].len = 0;
        if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = static_cast<std::int32_t>(top.pos);
        if (cur.prev >= 0) {
            const Symbol& prev = symbols[static_cast<std::size_t>(cur.prev)];
            if (auto m = merges.find(pair_key(prev.id, cur.id)); m != merges.end()) {
                queue.push({m->second.first, static_cast<std::size_t>(cur.prev), m->second.second});
            }
        }
        if (cur.next >= 0) {
            const Symbol& nx = symbols[static_cast<std::size_t>(cur.next)];
            if (auto m = merges.find(pair_key(cur.id, nx.id)); m != merges.end()) {
                queue.push({m->second.first, top.pos, m->second.second});
            }
        }
    }
    for (const Symbol& sym : symbols) {
        if (sym.len != 0) result.push_back(sym.id);
    }
    return result;
}

Status TokenizerImpl::unigram(const std::u32string& word, Sink& sink) const {
    // Viterbi over character positions, as sentencepiece's optimised encoder: best[i] is the best
    // score of a segmentation of word[0, i); ties keep the first candidate found (shorter starts first).
    const std::size_t n = word.size();
    const double unk_score = min_score - 10.0;
    struct Node {
        double score = 0.0;
        std::size_t start = 0;
        std::int32_t id = -1;
        bool set = false;
    };
    std::vector<Node> best(n + 1);
    std::string utf8;
    std::vector<std::size_t> offsets;
    for (char32_t c : word) {
        offsets.push_back(utf8.size());
        wu::append_utf8(c, utf8);
    }
    offsets.push_back(utf8.size());
    std::string piece;
    for (std::size_t i = 0; i < n; ++i) {
        const double base = best[i].score;
        bool single = false;
        // Common-prefix search of the trie from character i.
        std::int32_t node = 0;
        std::size_t e = i;  // characters consumed
        for (std::size_t b = offsets[i]; b < utf8.size(); ++b) {
            const auto& next = trie[static_cast<std::size_t>(node)].next;
            const auto byte = static_cast<unsigned char>(utf8[b]);
            auto it = std::lower_bound(next.begin(), next.end(), byte,
                                       [](const std::pair<unsigned char, std::int32_t>& x, unsigned char v) { return x.first < v; });
            if (it == next.end() || it->first != byte) break;
            node = it->second;
            if (b + 1 != offsets[e + 1]) continue;  // inside a character
            ++e;
            const std::int32_t id = trie[static_cast<std::size_t>(node)].id;
            if (id < 0) continue;
            if (e == i + 1) single = true;
            const double sc = base + scores[static_cast<std::size_t>(id)];
            if (!best[e].set || sc > best[e].score) best[e] = {sc, i, id, true};
        }
        if (!single) {
            if (unk < 0) {
                return invalid_argument("the Unigram model has no unk_id for a character outside its vocabulary");
            }
            const double sc = base + unk_score;
            if (!best[i + 1].set || sc > best[i + 1].score) best[i + 1] = {sc, i, unk, true};
        }
    }
    // Backtrack; consecutive unknown pieces fuse into one piece, then each piece's text is looked up
    // (an unknown text is [UNK], or its bytes when byte_fallback).
    std::vector<std::pair<std::size_t, std::size_t>> pieces;  // character ranges, reversed
    std::size_t fused_end = 0;
    bool fusing = false;
    for (std::size_t e = n; e > 0;) {
        const Node& node = best[e];
        if (node.id == unk) {
            if (!fusing) fused_end = e;
            fusing = true;
        } else {
            if (fusing) pieces.push_back({e, fused_end});
            fusing = false;
            pieces.push_back({node.start, e});
        }
        e = node.start;
    }
    if (fusing) pieces.push_back({0, fused_end});
    for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        piece.assign(utf8, offsets[it->first], offsets[it->second] - offsets[it->first]);
        if (auto v = vocab.find(piece); v != vocab.end()) {
            sink.push(v->second, piece);
            continue;
        }
        if (byte_fallback) {
            std::vector<std::int32_t> bytes;
            for (unsigned char b : piece) {
                auto f = vocab.find(fmt::format("<0x{:02X}>", b));
                if (f == vocab.end()) break;
                bytes.push_back(f->second);
            }
            if (bytes.size() == piece.size()) {
                for (std::size_t k = 0; k < bytes.size(); ++k) {
                    sink.push(bytes[k], fmt::format("<0x{:02X}>", static_cast<unsigned char>(piece[k])));
                }
                continue;
            }
        }
        if (unk < 0) return invalid_argument("the Unigram model has no unk_id for an unknown piece");
        sink.push(unk, piece);
    }
    return ok_status();
}

}  // namespace quiver::text::detail
