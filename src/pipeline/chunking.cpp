// Chunking and chunk-score aggregation (see chunking.h).
#include "quiver/pipeline/chunking.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <unordered_map>

namespace quiver::pipeline {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::vector<std::string_view> units_of(std::string_view text, ChunkUnit unit) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_space(text[i])) ++i;
        if (i >= text.size()) break;
        std::size_t j = i;
        if (unit == ChunkUnit::kTokens) {
            while (j < text.size() && !is_space(text[j])) ++j;
        } else {
            while (j < text.size() && !((text[j] == '.' || text[j] == '!' || text[j] == '?') &&
                                        (j + 1 == text.size() || is_space(text[j + 1])))) {
                ++j;
            }
            if (j < text.size()) ++j;  // keep the terminator
        }
        std::size_t end = j;
        while (end > i && is_space(text[end - 1])) --end;
        out.push_back(text.substr(i, end - i));
        i = j;
    }
    return out;
}

void append(std::string& out, std::string_view part) {
    if (part.empty()) return;
    if (!out.empty()) out += ' ';
    out += part;
}

}  // namespace

Result<ChunkingSpec> parse_chunking(std::string_view text) {
    ChunkingSpec spec;
    const std::size_t colon = text.find(':');
    const std::string_view unit = text.substr(0, colon);
    if (unit == "tokens") {
        spec.unit = ChunkUnit::kTokens;
    } else if (unit == "sentences") {
        spec.unit = ChunkUnit::kSentences;
        spec.size = 3;
        spec.overlap = 1;
    } else {
        return invalid_argument(fmt::format("--chunking '{}': unknown unit '{}' (tokens, sentences)", text, unit));
    }
    std::string_view rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    while (!rest.empty()) {
        const std::size_t comma = std::min(rest.find(','), rest.size());
        const std::string_view item = rest.substr(0, comma);
        rest = comma < rest.size() ? rest.substr(comma + 1) : std::string_view();
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos) return invalid_argument(fmt::format("--chunking '{}': '{}' is not NAME=VALUE", text, item));
        const std::string_view name = item.substr(0, eq), value = item.substr(eq + 1);
        if (name == "aggregate") {
            if (value == "maxp") {
                spec.aggregation = ChunkAggregation::kMaxP;
            } else if (value == "firstp") {
                spec.aggregation = ChunkAggregation::kFirstP;
            } else if (value == "sump") {
                spec.aggregation = ChunkAggregation::kSumP;
            } else {
                return invalid_argument(fmt::format("--chunking '{}': aggregate is maxp, firstp or sump", text));
            }
            continue;
        }
        std::size_t x = 0;
        const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
        if (ec != std::errc() || ptr != value.data() + value.size() || value.empty()) {
            return invalid_argument(fmt::format("--chunking '{}': '{}' needs a whole number", text, name));
        }
        if (name == "size") {
            spec.size = x;
        } else if (name == "overlap") {
            spec.overlap = x;
        } else if (name == "situated") {
            spec.situated = x != 0;
        } else if (name == "context") {
            spec.context = x;
        } else {
            return invalid_argument(fmt::format("--chunking '{}': unknown parameter '{}'", text, name));
        }
    }
    if (spec.size == 0 || spec.overlap >= spec.size) {
        return invalid_argument(fmt::format("--chunking '{}': needs size >= 1 and overlap < size", text));
    }
    return spec;
}

std::string_view to_string(ChunkUnit unit) noexcept { return unit == ChunkUnit::kTokens ? "tokens" : "sentences"; }

std::string_view to_string(ChunkAggregation aggregation) noexcept {
    switch (aggregation) {
        case ChunkAggregation::kMaxP: return "maxp";
        case ChunkAggregation::kFirstP: return "firstp";
        case ChunkAggregation::kSumP: return "sump";
    }
    return "maxp";
}

std::string to_string(const ChunkingSpec& spec) {
    return fmt::format("{}:size={},overlap={},aggregate={},situated={},context={}", to_string(spec.unit), spec.size,
                       spec.overlap, to_string(spec.aggregation), spec.situated ? 1 : 0, spec.context);
}

Status validate_chunking(const ChunkingSpec& spec) {
    if (spec.size == 0 || spec.overlap >= spec.size) {
        return invalid_argument(fmt::format("chunking: needs size >= 1 and overlap < size (size {}, overlap {})",
                                            spec.size, spec.overlap));
    }
    return ok_status();
}

std::vector<std::string> chunk_document(std::string_view title, std::string_view text, const ChunkingSpec& spec) {
    const std::vector<std::string_view> units = units_of(text, spec.unit);
    std::vector<std::string> out;
    const std::size_t stride = spec.size - spec.overlap;
    for (std::size_t start = 0;; start += stride) {
        const std::size_t end = std::min(units.size(), start + spec.size);
        std::string chunk;
        if (spec.situated) {
            append(chunk, title);
            for (std::size_t i = start > spec.context ? start - spec.context : 0; i < start; ++i) append(chunk, units[i]);
        }
        for (std::size_t i = start; i < end; ++i) append(chunk, units[i]);
        out.push_back(std::move(chunk));
        if (end >= units.size()) break;
    }
    return out;
}

std::vector<DocScore> aggregate_chunks(std::span<const ChunkHit> hits, ChunkAggregation aggregation) {
    struct Acc {
        double score = 0.0;
        double best = 0.0;  // the best chunk's score
        std::uint32_t chunk = 0;
    };
    std::unordered_map<std::uint32_t, Acc> score;
    for (const ChunkHit& h : hits) {
        if (aggregation == ChunkAggregation::kFirstP) {
            if (h.chunk == 0) score[h.doc] = {h.score, h.score, 0};
            continue;
        }
        const auto [it, added] = score.emplace(h.doc, Acc{h.score, h.score, h.chunk});
        if (added) continue;
        Acc& a = it->second;
        a.score = aggregation == ChunkAggregation::kMaxP ? std::max(a.score, h.score) : a.score + h.score;
        if (h.score > a.best || (h.score == a.best && h.chunk < a.chunk)) {
            a.best = h.score;
            a.chunk = h.chunk;
        }
    }
    std::vector<DocScore> out;
    out.reserve(score.size());
    for (const auto& [doc, a] : score) out.push_back({doc, a.score, a.chunk});
    std::sort(out.begin(), out.end(), [](const DocScore& a, const DocScore& b) {
        if (a.score != b.score) return a.score > b.score;
        return a.doc < b.doc;
    });
    return out;
}

}  // namespace quiver::pipeline
