/// @file chunking.h
/// @brief Long documents in chunks: splitting by tokens or sentences with overlap, situated chunk text,
/// and aggregation of chunk scores to documents (MaxP, FirstP, SumP; Dai & Callan 2019).
///
/// Units: `tokens` are whitespace-separated words; `sentences` end at '.', '!' or '?' followed by
/// whitespace (or the end of the text). A document of n units gives windows of `size` units starting
/// at 0, stride = size - overlap, ..., the last window ending at unit n (a document of at most `size`
/// units is one chunk; an empty document is one empty chunk). Chunk text is its units joined by one
/// space. Situated text (`situated`): the title, then the `context` units before the chunk, then
/// the chunk, joined by " " (empty parts skipped), so each chunk is read in its document's context.
///
/// Aggregation over a query's chunk hits (chunk -> parent document, chunk index, score):
///   maxp: a document scores its best chunk; firstp: its first chunk (index 0), documents whose first
///   chunk was not retrieved are left out; sump: the sum of its retrieved chunks' scores.
/// Documents are returned by score descending, ties by id ascending.
///
/// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::pipeline {

enum class ChunkUnit : std::uint8_t { kTokens, kSentences };
enum class ChunkAggregation : std::uint8_t { kMaxP, kFirstP, kSumP };

struct ChunkingSpec {
    ChunkUnit unit = ChunkUnit::kTokens;
    std::size_t size = 128;
    std::size_t overlap = 32;  ///< < size
    bool situated = false;
    std::size_t context = 0;   ///< units of preceding text in situated chunks
    ChunkAggregation aggregation = ChunkAggregation::kMaxP;
    bool operator==(const ChunkingSpec&) const = default;
};

/// "tokens:size=128,overlap=32,aggregate=maxp,situated=1,context=16" or "sentences:size=3,overlap=1".
/// kInvalidArgument on an unknown unit or parameter, size 0, or overlap >= size.
[[nodiscard]] Result<ChunkingSpec> parse_chunking(std::string_view text);
/// The spec in parse_chunking's language, every parameter spelled out (parses back to `spec`).
std::string to_string(const ChunkingSpec& spec);
std::string_view to_string(ChunkUnit unit) noexcept;
std::string_view to_string(ChunkAggregation aggregation) noexcept;
/// kInvalidArgument unless size >= 1 and overlap < size.
[[nodiscard]] Status validate_chunking(const ChunkingSpec& spec);

/// The chunk texts of one document, in order.
std::vector<std::string> chunk_document(std::string_view title, std::string_view text, const ChunkingSpec& spec);

struct ChunkHit {
    std::uint32_t doc = 0;    ///< parent document number
    std::uint32_t chunk = 0;  ///< index of the chunk within its document
    double score = 0.0;
};

struct DocScore {
    std::uint32_t doc = 0;
    double score = 0.0;
    std::uint32_t chunk = 0;  ///< its best retrieved chunk (highest score, lowest index on ties; firstp: 0)
};

/// Document scores from one query's chunk hits (any order; a chunk at most once).
std::vector<DocScore> aggregate_chunks(std::span<const ChunkHit> hits, ChunkAggregation aggregation);

}  // namespace quiver::pipeline
