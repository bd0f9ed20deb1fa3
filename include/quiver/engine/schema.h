/// @file schema.h
/// @brief A collection's schema, its documents, and attribute filters.
///
/// Field types:
///   - text: a UTF-8 string, analysed and BM25-indexed (unless `indexed` is false). A text field with
///     `sources` holds no value of its own: it indexes other text fields of the document (one source is
///     the body; two are title + body, exactly as `quiver eval`'s BM25 indexes BEIR documents).
///     With `chunking` (pipeline/chunking.h) an indexed text field indexes each document's text in
///     chunks (`chunk_document(title, body, spec)`; every document has at least one chunk), each chunk
///     pointing to its document. BM25 statistics of the field count chunks (N = chunks with tokens,
///     avgdl over chunks, df = chunks containing the term), as `quiver eval --chunking` indexes them.
///     A search retrieves the field's best chunks and returns documents scored by the spec's
///     aggregation (maxp, firstp, sump) with the best chunk's index (docs/collections.md).
///   - vector: `dim` finite floats, searched with the field's index (flat or hnsw) under `metric`.
///     With an `encoder` ("hashing" for the deterministic test encoder, or a model directory that
///     `encode::load_encoder` reads), a document may give text instead of the vector (a string value,
///     or, when the field is absent, its `sources` text fields joined by a space) and queries may give
///     text; the text is embedded at upsert (the WAL stores the vector) and at query time.
///     With an encoder and `chunking`, the text (the field's string, or its sources as title + body,
///     as a chunked text field reads them) is cut by `pipeline::chunk_document` and every chunk
///     embedded: the field's value becomes the chunk vectors (a TokenVectors value, row j = chunk j,
///     1..kMaxChunksPerDocument rows; the WAL and the document store keep it), and the field's index
///     holds one entry per chunk whose vector is not zero (a chunk with nothing to embed is not
///     indexed). A search scores chunks by similarity (cosine and inner product: 1 - distance, the
///     cosine or inner product itself; l2: -distance) and returns documents aggregated as for
///     chunked text fields. Vectors given directly cannot be chunked (chunking needs an encoder).
///     With `quantization` (a codec of index/codec.h: sq8, sq4, pq<M>x<b>, rabitq<b>, binary<b>), persisted
///     segments keep the field as compressed codes: an hnsw field walks a graph over the codes, a flat field
///     scans the codes (or, with `nlist`, IVF lists of them); the best candidates are re-scored with the
///     float32 vectors, so scores are exact distances. In-memory segments (the memtable, small batches)
///     stay float32 and exact. With `on_disk` (quantized fields only) persisted segments leave the float32
///     vectors in the index file and the rescore reads them with pread: only codes, graph or lists and ids
///     stay resident (CollectionStats::vector_memory_bytes / vector_disk_bytes).
///     With `memory_budget` (bytes; instead of `quantization` and `on_disk`) each persisted segment picks
///     float32 or codes with float32 vectors on disk by the rule of index/memory_budget.h, so the field's
///     persisted segments fit the budget once optimized (docs/collections.md "Memory budget").
///   - sparse_vector: term -> weight (weights finite, >= 0; zeros dropped), searched exactly by inner
///     product over the shared posting core (`sparse::ExactSparseIndex`). With an `encoder` (a SPLADE
///     model directory), documents and queries may give text (or the field takes its `sources`), which
///     is encoded to vocabulary-term weights at upsert (the WAL stores the weights) and at query time.
///   - multi_vector: a set of token vectors of `dim` floats each (ColBERT style), scored by MaxSim
///     (sum over query tokens of the best inner product with a document token). `mv_index` exact
///     scores every document (brute force); muvera searches an HNSW index of MUVERA encodings in
///     persisted segments and re-ranks its candidates by exact MaxSim (small in-memory segments and
///     the memtable are always exact). With an `encoder` (a ColBERT model directory) text is encoded
///     to token vectors at upsert (the WAL stores the vectors) and at query time, as above. With
///     `token_codec` int8, persisted segments keep the token vectors as int8 codes (one scale per token,
///     multivector/token_store.h) and score MaxSim over them with the int8 kernel (a quarter of the
///     float32 bytes; scores drift from float32 MaxSim by the quantisation error, about 1e-3 relative);
///     the memtable and small in-memory segments stay float32, and the documents keep their float32
///     tokens (what `get` returns and merges rebuild from).
///   - keyword, integer, float, boolean, keyword_list: stored attributes usable in filters. With
///     `payload_index` (`"index": true` in the JSON schema) each segment keeps a payload index of the
///     field (engine/payload_index.h), so filters on it cost index lookups instead of a scan.
/// Every field is optional in a document; every stored field is returned by `get`.
/// Documents have a non-empty UTF-8 string id of at most 512 bytes.
///
/// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/index/codec.h"
#include "quiver/multivector/token_store.h"
#include "quiver/pipeline/chunking.h"
#include "quiver/simd/kernels.h"

namespace quiver::engine {

enum class FieldType : std::uint8_t { kText = 0, kVector = 1, kKeyword = 2, kInteger = 3, kFloat = 4, kBool = 5,
                                      kKeywordList = 6, kSparse = 7, kMultiVector = 8 };
enum class VectorIndexKind : std::uint8_t { kFlat = 0, kHnsw = 1 };
/// How a multi_vector field is searched in persisted segments.
enum class MultiVectorIndexKind : std::uint8_t { kExact = 0, kMuvera = 1 };
/// Where a MUVERA field's persisted segments keep the document encodings (FDEs): int8 partition
/// blocks scanned over the query's non-zero blocks (multivector/fde_blocks.h; the default), or an
/// HNSW graph over float32 FDEs (collections created before blocked FDEs; still read and written).
enum class MuveraFdeKind : std::uint8_t { kHnsw = 0, kBlocks = 1 };

/// MUVERA parameters of a multi_vector field with `"index": "muvera"` (docs/collections.md). The
/// defaults are the configuration that reached recall@10 0.96 against exact MaxSim at 18.6x its speed
/// on 60,746 real passages (docs/multivector.md).
struct MuveraFieldParams {
    MuveraFdeKind fde = MuveraFdeKind::kBlocks;
    std::size_t k_sim = 6;   ///< SimHash hyperplanes per repetition (2^k_sim partitions); 1..10
    std::size_t d_proj = 8;  ///< inner projection width (0 = identity: the token dimension)
    std::size_t r_reps = 8;  ///< repetitions; r_reps * 2^k_sim * width is the FDE size (at most 65,536)
    /// FDE candidates re-ranked by exact MaxSim per segment (a search's `ef` replaces it); 0 = the
    /// HNSW rule max(10 k, 100, ef).
    std::size_t candidates = 3200;
    bool operator==(const MuveraFieldParams&) const = default;
    /// What fields stored before these parameters existed use: HNSW over k_sim 4, d_proj 16,
    /// r_reps 10 FDEs, max(10 k, 100, ef) candidates.
    static MuveraFieldParams legacy() noexcept { return {MuveraFdeKind::kHnsw, 4, 16, 10, 0}; }
};
inline constexpr std::size_t kMaxMuveraFdeDim = 65536;
inline constexpr std::size_t kMaxMuveraCandidates = 100000;

/// Limits on one multi_vector value (a document's or a query's token set).
inline constexpr std::size_t kMaxTokenVectors = 4096;
inline constexpr std::size_t kMaxTokenDim = 4096;
/// Limit on a chunking spec's `size` and `context` (units).
inline constexpr std::size_t kMaxChunkUnits = 1u << 20;
/// Limit on the chunks of one document in a chunked vector field (rows of its chunk vectors).
inline constexpr std::size_t kMaxChunksPerDocument = 65536;

std::string_view to_string(FieldType type) noexcept;
Result<FieldType> parse_field_type(std::string_view name);

/// Compressed codes for a vector field's persisted segments (see the file comment; docs/collections.md).
struct VectorQuantization {
    index::CodecSpec codec{};  ///< kNone = not quantized (float32 everywhere)
    /// Candidates re-scored in float32: flat fields the best `rescore` by code distance (0 = the
    /// index's default: 10k (at least 100), or RaBitQ's error bound); hnsw fields re-score the final
    /// beam, so the beam is at least `rescore` wide.
    std::size_t rescore = 0;
    std::size_t nlist = 0;   ///< flat fields: IVF lists per segment (0 = scan every code); capped at rows / 32
    std::size_t nprobe = 0;  ///< flat fields with nlist: lists probed per query (0 = max(1, nlist / 32))
    bool enabled() const noexcept { return codec.kind != index::CodecKind::kNone; }
    bool operator==(const VectorQuantization&) const = default;
};

struct FieldSpec {
    std::string name;
    FieldType type = FieldType::kText;
    // text
    bool indexed = true;
    std::vector<std::string> sources;  ///< other text fields indexed together (title, body); empty = itself
    std::optional<pipeline::ChunkingSpec> chunking;  ///< indexed text fields and vector fields with an
                                                     ///< encoder: index the text in chunks
    // vector
    std::size_t dim = 0;
    simd::Metric metric = simd::Metric::kCosine;
    VectorIndexKind index = VectorIndexKind::kHnsw;
    std::size_t hnsw_m = 16;
    std::size_t hnsw_ef_construction = 100;
    std::string encoder;  ///< vector: "" (none), "hashing" or a model directory; sparse_vector (SPLADE) and
                          ///< multi_vector (ColBERT): "" or a model directory
    VectorQuantization quantization{};  ///< vector fields: codes for persisted segments
    bool on_disk = false;  ///< quantized vector fields: float32 vectors stay on disk (read by the rescore)
    /// Vector fields: resident bytes allowed for the field's persisted segments (0 = no budget). Each
    /// persisted segment picks its storage by index/memory_budget.h's rule for the collection's live
    /// documents when it is built (docs/collections.md "Memory budget"); excludes `quantization`/`on_disk`.
    std::uint64_t memory_budget = 0;
    // multi_vector (also dim, encoder, sources; hnsw_m / hnsw_ef_construction for an HNSW MUVERA graph)
    MultiVectorIndexKind mv_index = MultiVectorIndexKind::kMuvera;
    MuveraFieldParams muvera{};  ///< mv_index kMuvera: FDE layout and parameters of persisted segments
    multivector::TokenCodec token_codec = multivector::TokenCodec::kFloat32;  ///< persisted segments' token store
    // attributes
    bool payload_index = false;  ///< keyword, integer, float, boolean, keyword_list: build a payload index
};

struct Schema {
    std::vector<FieldSpec> fields;
    float bm25_k1 = 0.9f;
    float bm25_b = 0.4f;

    /// kInvalidArgument for duplicate or malformed names, zero dims, bad sources, bad BM25 parameters.
    [[nodiscard]] Status validate() const;
    const FieldSpec* find(std::string_view name) const noexcept;
};

/// A sparse vector as given: (term, weight) pairs.
using SparseTerms = std::vector<std::pair<std::string, float>>;

/// A multi_vector value: `rows()` token vectors of `dim` floats, row-major in `values`.
struct TokenVectors {
    std::size_t dim = 0;
    std::vector<float> values;
    std::size_t rows() const noexcept { return dim == 0 ? 0 : values.size() / dim; }
    bool operator==(const TokenVectors&) const = default;
};

/// A field value. monostate = absent.
using FieldValue = std::variant<std::monostate, std::string, std::int64_t, double, bool, std::vector<std::string>,
                                std::vector<float>, SparseTerms, TokenVectors>;

struct Document {
    std::string id;
    std::map<std::string, FieldValue, std::less<>> fields;
};

/// True for a vector, sparse_vector or multi_vector field with an encoder (accepts text).
inline bool embeds_text(const FieldSpec& f) noexcept {
    return (f.type == FieldType::kVector || f.type == FieldType::kSparse || f.type == FieldType::kMultiVector) &&
           !f.encoder.empty();
}
/// True for a vector field with an encoder and `chunking` (its value is the chunk vectors).
inline bool chunked_vectors(const FieldSpec& f) noexcept {
    return f.type == FieldType::kVector && !f.encoder.empty() && f.chunking.has_value();
}
/// True for fields that are stored attributes (usable in filters).
inline bool is_attribute_type(FieldType t) noexcept {
    return t != FieldType::kText && t != FieldType::kVector && t != FieldType::kSparse && t != FieldType::kMultiVector;
}

/// Checks a document against the schema: known fields, value types, vector dimension, finite floats,
/// valid UTF-8, id rules. Integer values are accepted for float fields (converted).
[[nodiscard]] Status validate_document(const Schema& schema, Document& doc);
/// True when `id` is an acceptable document id.
bool valid_document_id(std::string_view id) noexcept;

/// Limits on one filter (checked by `Filter::validate`): they bound the work a request can ask for.
/// An `in` list costs one index lookup per value (or one binary search per document on fields
/// without a payload index), so the value limit bounds both.
inline constexpr std::size_t kMaxFilterNodes = 1024;     ///< leaves and and/or/not nodes
inline constexpr std::size_t kMaxFilterValues = 65536;   ///< values over all eq/ne/in leaves
inline constexpr std::size_t kMaxFilterDepth = 32;       ///< nesting of and/or/not
inline constexpr std::size_t kMaxFilterPrefixBytes = 1024;

/// An attribute filter tree. Leaves test one attribute field; a document without the field fails
/// every leaf except that `not` of it passes. Keyword-list fields match a leaf when any element does.
///   - kEq: the value equals `values[0]`; kIn: any of `values`; kNe: the field is present and no
///     value equals `values[0]` (exists and not eq);
///   - kRange: numeric fields, bounds gt/gte/lt/lte (any subset);
///   - kExists: the field is present (an empty keyword list counts as present);
///   - kPrefix: keyword / keyword_list fields, a value starts with `values[0]` (bytewise);
///   - kAnd, kOr (any number of children; an empty and is true, an empty or false), kNot (one child).
/// Segments evaluate a filter to a bitmap (engine/payload_index.h); `matches` is the per-document
/// reference semantics.
struct Filter {
    enum class Op : std::uint8_t { kEq, kIn, kRange, kAnd, kOr, kNot, kNe, kExists, kPrefix };
    Op op = Op::kEq;
    std::string field;                 ///< leaves
    std::vector<FieldValue> values;    ///< kEq, kNe, kPrefix: one value; kIn: the set
    std::optional<double> gt, gte, lt, lte;  ///< kRange bounds (integer and float fields)
    std::vector<Filter> children;      ///< kAnd, kOr: any number; kNot: one

    /// kInvalidArgument for unknown fields, fields that are not attributes, value types that do not
    /// match the field, and filters beyond the limits above.
    [[nodiscard]] Status validate(const Schema& schema) const;
    /// Evaluates against a document's fields (reference semantics; linear in the size of `in` lists).
    bool matches(const std::map<std::string, FieldValue, std::less<>>& fields) const;
};

}  // namespace quiver::engine
