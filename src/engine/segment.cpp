// Immutable segments: compressed document store + per-field BM25 and vector indexes. See segment.h.
#include "engine/segment.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <limits>
#include <memory>

#include "engine/codec.h"
#include "engine/memtable.h"
#include "quiver/index/code_index.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/storage/wal.h"

namespace quiver::engine {
namespace {

constexpr std::uint32_t kSegmentKind = storage::fourcc("SEGD");
// Version 2: document blocks of 4 documents, zstd level 1 (a hit's fields decompress 4 documents,
// about 5x faster per byte than zlib). Version 1 (still read): blocks of 16 documents, zlib.
// Version 3: as version 2, written when the schema has multi_vector fields or chunked vector fields,
// whose documents hold token (chunk) vectors (value tag 8), which version-2 readers do not know.
// Version 4: as version 3 plus a short-field column (Segment::short_fields()), written when the
// segment has short fields: the metadata ends with their names, the column's size and one offset per
// slot; the payload's raw region holds the column, then the blocks (which omit those fields).
constexpr std::uint32_t kSegmentVersionV2 = 2;
constexpr std::uint32_t kSegmentVersionV3 = 3;
constexpr std::uint32_t kSegmentVersion = 4;
constexpr std::size_t kDocsPerBlock = 4;
constexpr std::size_t kDocsPerBlockV1 = 16;

bool is_attribute_value(const FieldSpec& f) { return is_attribute_type(f.type); }

// Documents of this field hold TokenVectors values (value tag 8): multi_vector fields' token vectors
// and chunked vector fields' chunk vectors.
bool holds_token_values(const FieldSpec& f) { return f.type == FieldType::kMultiVector || chunked_vectors(f); }

std::string text_file(const std::string& seg_dir, const std::string& field) {
    return seg_dir + "/text_" + field + ".bm25";
}
std::string vector_file(const std::string& seg_dir, const std::string& field) {
    return seg_dir + "/vec_" + field + ".qvr";
}
std::string sparse_file(const std::string& seg_dir, const std::string& field) {
    return seg_dir + "/sparse_" + field + ".spex";
}
std::string multivector_file(const std::string& seg_dir, const std::string& field) {
    return seg_dir + "/mv_" + field + ".mvix";
}

// A persisted MUVERA segment holds the FDE layout and parameters of its field (merges rebuild with
// them; collections stored before blocked FDEs have MuveraFieldParams::legacy(), an HNSW graph).
Status check_muvera_layout(const std::string& path, const multivector::MultiVectorIndex& mv,
                           const MuveraFieldParams& want) {
    const std::string kind = want.fde == MuveraFdeKind::kBlocks ? "blocks" : "hnsw";
    const multivector::MuveraParams& p = mv.muvera()->params();
    if (mv.fde_kind() != kind || p.k_sim != want.k_sim || p.d_proj != want.d_proj || p.r_reps != want.r_reps ||
        p.d_final != 0) {
        return data_loss("'" + path + "': MUVERA encodings (" + mv.fde_kind() + ", k_sim " + std::to_string(p.k_sim) +
                         ", d_proj " + std::to_string(p.d_proj) + ", r_reps " + std::to_string(p.r_reps) +
                         ") do not match the field's (" + kind + ", k_sim " + std::to_string(want.k_sim) + ", d_proj " +
                         std::to_string(want.d_proj) + ", r_reps " + std::to_string(want.r_reps) + ")");
    }
    return ok_status();
}

std::string payload_file(const std::string& seg_dir) { return seg_dir + "/payload.pidx"; }

// The text fields whose values average at most Segment::kShortFieldBytes over the documents that
// have them (sorted by name): stored in the short-field column.
std::vector<std::string> choose_short_fields(const Schema& schema, std::span<const Document* const> docs) {
    std::vector<std::string> out;
    for (const FieldSpec& f : schema.fields) {
        if (f.type != FieldType::kText) continue;
        std::uint64_t bytes = 0;
        std::uint64_t count = 0;
        for (const Document* d : docs) {
            const auto it = d->fields.find(f.name);
            if (it == d->fields.end()) continue;
            const auto* text = std::get_if<std::string>(&it->second);
            if (text == nullptr) continue;
            bytes += text->size();
            ++count;
        }
        if (count > 0 && bytes <= Segment::kShortFieldBytes * count) out.push_back(f.name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool contains_name(const std::vector<std::string>& sorted, std::string_view name) {
    return std::binary_search(sorted.begin(), sorted.end(), name, std::less<>());
}

// encode_document of (id, the fields of `doc` that are in `names` (sorted) when `in_names`, else
// those that are not): a block's document without its short fields, or a short-field column entry
// (id "") without copying the values into a Document first.
void encode_fields(ByteWriter& w, std::string_view id, const Document& doc, const std::vector<std::string>& names,
                   bool in_names) {
    w.str(id);
    std::uint32_t n = 0;
    for (const auto& [name, v] : doc.fields) n += contains_name(names, name) == in_names ? 1 : 0;
    w.u32(n);
    for (const auto& [name, v] : doc.fields) {
        if (contains_name(names, name) != in_names) continue;
        w.str(name);
        encode_value(w, v);
    }
}

std::vector<std::string> attribute_field_names(const Schema& schema) {
    std::vector<std::string> out;
    for (const FieldSpec& f : schema.fields) {
        if (is_attribute_type(f.type)) out.push_back(f.name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool has_payload_index(const Schema& schema) {
    for (const auto& f : schema.fields) {
        if (f.payload_index) return true;
    }
    return false;
}

const std::string* text_value(const Document& d, const std::string& name) {
    const auto it = d.fields.find(name);
    if (it == d.fields.end()) return nullptr;
    return std::get_if<std::string>(&it->second);
}

}  // namespace

void text_views(const FieldSpec& f, const Document& d, std::string_view& title, std::string_view& text) {
    title = {};
    text = {};
    if (f.sources.empty()) {
        if (const auto* s = text_value(d, f.name)) text = *s;
    } else if (f.sources.size() == 1) {
        if (const auto* s = text_value(d, f.sources[0])) text = *s;
    } else {
        if (const auto* s = text_value(d, f.sources[0])) title = *s;
        if (const auto* s = text_value(d, f.sources[1])) text = *s;
    }
}

std::vector<std::string> field_chunks(const FieldSpec& f, const Document& d) {
    std::string_view title;
    std::string_view text;
    text_views(f, d, title, text);
    return pipeline::chunk_document(title, text, f.chunking ? *f.chunking : pipeline::ChunkingSpec{});
}

namespace {

// Parses a chunk entry id "<slot>:<chunk>" (Segment::build); false when malformed.
bool parse_chunk_id(std::string_view id, std::uint32_t& slot, std::uint32_t& chunk) {
    const std::size_t colon = id.find(':');
    if (colon == std::string_view::npos) return false;
    auto number = [](std::string_view t, std::uint32_t& out) {
        const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
        return !t.empty() && ec == std::errc() && ptr == t.data() + t.size();
    };
    return number(id.substr(0, colon), slot) && number(id.substr(colon + 1), chunk);
}

simd::Metric codec_metric(simd::Metric m) { return m == simd::Metric::kCosine ? simd::Metric::kInnerProduct : m; }

// Whether a persisted segment of `rows` vectors of field `f` keeps codes: the field is quantized and
// the codec can be trained on that many rows (PQ needs one row per centroid); else it stays float32.
bool quantizes(const FieldSpec& f, std::size_t rows) {
    if (!f.quantization.enabled() || rows == 0) return false;
    auto codec = index::Codec::create(f.quantization.codec, f.dim, codec_metric(f.metric));
    return codec && rows >= (*codec)->min_train_rows();
}

// IVF lists of a quantized flat field for `rows` vectors: at least 32 rows per list, else one flat scan.
std::size_t effective_nlist(const FieldSpec& f, std::size_t rows) {
    const std::size_t cap = rows / 32;
    const std::size_t n = std::min(f.quantization.nlist, cap);
    return n >= 2 ? n : 0;
}

// The storage a built (not exact) segment gives vector field `f` with `rows` vectors in a segment of
// `docs` documents: the codec (kNone: float32) and whether a persisted segment leaves the float32
// vectors on disk.
struct FieldStorage {
    index::CodecSpec codec{};
    bool on_disk = false;
};

Result<FieldStorage> field_storage(const FieldSpec& f, std::size_t rows, std::size_t docs,
                                   const SegmentBuildOptions& options) {
    if (f.memory_budget == 0) {
        if (!quantizes(f, rows)) return FieldStorage{{}, f.on_disk};
        return FieldStorage{f.quantization.codec, f.on_disk};
    }
    if (rows == 0) return FieldStorage{};
    QUIVER_ASSIGN_OR_RETURN(index::BudgetChoice c,
                            budget_storage(f, std::max(options.collection_documents, docs), rows));
    return FieldStorage{c.codec, c.vectors_on_disk};
}

std::string codec_name(const index::VectorIndex& v) {
    if (const auto* h = dynamic_cast<const index::HnswIndex*>(&v)) return h->params().codec.to_string();
    if (const auto* c = dynamic_cast<const index::CodeIndex*>(&v)) return c->codec()->spec().to_string();
    return index::CodecSpec{}.to_string();
}

}  // namespace

Result<index::BudgetChoice> budget_storage(const FieldSpec& f, std::size_t documents, std::size_t rows) {
    index::BudgetRequest r;
    r.budget_bytes = f.memory_budget;
    r.rows = std::max<std::size_t>(documents, 1);
    r.dim = f.dim;
    r.metric = f.metric;
    r.index_type = f.index == VectorIndexKind::kFlat ? "flat" : "hnsw";
    r.M = f.hnsw_m;
    auto candidates = index::budget_candidates(r);
    if (!candidates) return std::move(candidates).error().with_context("field '" + f.name + "'");
    std::uint64_t smallest = ~std::uint64_t{0};
    for (const index::BudgetChoice& c : *candidates) {
        if (c.codec.kind != index::CodecKind::kNone && rows > 0) {
            auto codec = index::Codec::create(c.codec, f.dim, codec_metric(f.metric));
            if (!codec || rows < (*codec)->min_train_rows()) continue;  // cannot train on this segment
        }
        smallest = std::min(smallest, c.predicted_bytes);
        if (c.predicted_bytes <= f.memory_budget) return c;
    }
    return invalid_argument(fmt::format(
        "field '{}': {} vectors of dimension {} do not fit its memory_budget of {} bytes: the smallest {} index needs "
        "{} bytes ({:.1f} per vector)",
        f.name, r.rows, f.dim, f.memory_budget, r.index_type, smallest, double(smallest) / double(r.rows)));
}

Status check_vector_budgets(const Schema& schema, std::size_t documents) {
    for (const FieldSpec& f : schema.fields) {
        if (f.type == FieldType::kVector && f.memory_budget != 0) QUIVER_TRY(budget_storage(f, documents, 0));
    }
    return ok_status();
}

void add_vector_budget_stats(const Schema& schema, const Segment& seg, CollectionStats& stats) {
    for (const VectorFieldStorage& v : seg.vector_storage()) {
        const FieldSpec& f = schema.fields[v.field];
        if (f.memory_budget == 0) continue;
        auto it = std::find_if(stats.vector_budgets.begin(), stats.vector_budgets.end(),
                               [&](const VectorBudgetStats& b) { return b.field == f.name; });
        if (it == stats.vector_budgets.end()) {
            // Schema order: insert before the first field that comes later in the schema.
            it = std::find_if(stats.vector_budgets.begin(), stats.vector_budgets.end(), [&](const VectorBudgetStats& b) {
                return schema.find(b.field) > &f;
            });
            it = stats.vector_budgets.insert(it, VectorBudgetStats{f.name, f.memory_budget, 0, {}});
        }
        it->memory_bytes += v.memory_bytes;
        auto at = std::find_if(it->segments.begin(), it->segments.end(),
                               [&](const VectorBudgetStats::Segment& x) { return x.id > seg.id(); });
        it->segments.insert(at, {seg.id(), v.codec, v.on_disk, v.memory_bytes});
    }
}

Result<std::shared_ptr<Segment>> Segment::build(std::uint64_t id, const Schema& schema, std::vector<Document> docs,
                                                std::vector<std::uint64_t> seqs, const SegmentBuildOptions& options) {
    std::vector<const Document*> refs(docs.size());
    for (std::size_t i = 0; i < docs.size(); ++i) refs[i] = &docs[i];
    return build(id, schema, std::span<const Document* const>(refs), std::move(seqs), options);
}

Result<std::shared_ptr<Segment>> Segment::build(std::uint64_t id, const Schema& schema,
                                                std::span<const Document* const> docs,
                                                std::vector<std::uint64_t> seqs, const SegmentBuildOptions& options) {
    std::shared_ptr<Segment> seg(new Segment());
    seg->id_ = id;
    seg->seqs_ = std::move(seqs);
    for (const auto& f : schema.fields) seg->token_values_ = seg->token_values_ || holds_token_values(f);
    seg->ids_.reserve(docs.size());
    seg->attrs_.reserve(docs.size());
    for (const Document* dp : docs) {
        const Document& d = *dp;
        seg->ids_.push_back(d.id);
        Document a;
        for (const auto& [name, v] : d.fields) {
            const FieldSpec* f = schema.find(name);
            if (f != nullptr && is_attribute_value(*f)) a.fields.emplace(name, v);
        }
        seg->attrs_.push_back(std::move(a));
    }
    // Short fields: one entry per slot in their own column, left out of the blocks.
    seg->attribute_fields_ = attribute_field_names(schema);
    seg->short_fields_ = choose_short_fields(schema, docs);
    if (!seg->short_fields_.empty()) {
        ByteWriter column;
        seg->short_offsets_.reserve(docs.size() + 1);
        seg->short_offsets_.push_back(0);
        for (const Document* d : docs) {
            encode_fields(column, "", *d, seg->short_fields_, true);
            seg->short_offsets_.push_back(column.bytes().size());
        }
        seg->owned_short_ = std::move(column.bytes());
        seg->short_blob_ = std::as_bytes(std::span<const char>(seg->owned_short_));
    }
    // Document store: blocks of kDocsPerBlock documents, each a u32 raw size + one zstd frame (with
    // raw_store, the encoded documents themselves).
    seg->docs_per_block_ = kDocsPerBlock;
    seg->raw_store_ = options.raw_store;
    seg->block_offsets_.push_back(0);
    // One compression context per thread, reused across blocks and builds (as the reads' DCtx).
    thread_local const std::unique_ptr<ZSTD_CCtx, std::size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
    if (!cctx) return resource_exhausted("zstd: no compression context");
    // A merge continuing a persisted base (its documents first, in order, none deleted) takes the
    // base's whole compressed blocks as they are: the same documents encoded and compressed the same
    // way give the same bytes, so a flush that continues the newest segment does not decode and
    // re-compress that segment's store (a block holding a base document and a new one is built anew).
    // Only when both put the same fields in the short-field column (else the blocks hold other fields).
    std::size_t first_built = 0;
    if (const Segment* base = options.base;
        base != nullptr && options.base_removed.empty() && !options.raw_store && !base->raw_store_ &&
        base->docs_per_block_ == kDocsPerBlock &&
        base->short_fields_ == seg->short_fields_ &&
        base->size() <= docs.size() && base->block_offsets_.size() == (base->size() + kDocsPerBlock - 1) / kDocsPerBlock + 1) {
        const std::size_t whole = base->size() / kDocsPerBlock;
        for (std::size_t b = 0; b < whole; ++b) {
            const std::uint64_t begin = base->block_offsets_[b];
            const std::uint64_t end = base->block_offsets_[b + 1];
            if (end < begin || end > base->blob_.size()) return data_loss("segment " + std::to_string(base->id()) + ": block table");
            seg->owned_blob_.append(reinterpret_cast<const char*>(base->blob_.data() + begin), end - begin);
            seg->block_offsets_.push_back(seg->owned_blob_.size());
        }
        first_built = whole * kDocsPerBlock;
    }
    for (std::size_t b = first_built; b < docs.size(); b += kDocsPerBlock) {
        ByteWriter w;
        for (std::size_t i = b; i < std::min(docs.size(), b + kDocsPerBlock); ++i) {
            encode_fields(w, docs[i]->id, *docs[i], seg->short_fields_, false);
        }
        const std::string& raw = w.bytes();
        if (raw.size() > (1u << 30)) return invalid_argument("documents too large for one store block");
        if (options.raw_store) {
            const auto raw_size = static_cast<std::uint32_t>(raw.size());
            seg->owned_blob_.append(reinterpret_cast<const char*>(&raw_size), 4);
            seg->owned_blob_ += raw;
            seg->block_offsets_.push_back(seg->owned_blob_.size());
            continue;
        }
        std::string packed(ZSTD_compressBound(raw.size()) + 4, '\0');
        const auto raw_size = static_cast<std::uint32_t>(raw.size());
        std::memcpy(packed.data(), &raw_size, 4);
        const std::size_t n = ZSTD_compressCCtx(cctx.get(), packed.data() + 4, packed.size() - 4, raw.data(), raw.size(), 1);
        if (ZSTD_isError(n) != 0) return internal_error(std::string("zstd compress failed: ") + ZSTD_getErrorName(n));
        packed.resize(n + 4);
        seg->owned_blob_ += packed;
        seg->block_offsets_.push_back(seg->owned_blob_.size());
    }
    seg->blob_ = std::as_bytes(std::span<const char>(seg->owned_blob_));
    static_cast<void>(seg->index_ids());  // unique: a batch keeps the last of duplicate ids, a merge live documents
    seg->payload_ = PayloadIndex::build(schema, seg->attrs_);
    QUIVER_TRY(seg->build_indexes(schema, docs, options));
    seg->measure_vectors();
    seg->bytes_ = seg->owned_blob_.size() + seg->owned_short_.size() + seg->ids_.size() * 16;
    return seg;
}

bool Segment::index_ids() {
    std::size_t cells = 2;
    while (cells < 2 * ids_.size()) cells *= 2;
    id_cells_.assign(cells, 0);
    id_mask_ = cells - 1;
    bool unique = true;
    for (std::uint32_t i = 0; i < ids_.size(); ++i) {
        const std::uint64_t hash = id_hash(ids_[i]);
        if (find(ids_[i], hash)) {
            unique = false;
            continue;
        }
        std::size_t at = hash & id_mask_;
        while (id_cells_[at] != 0) at = (at + 1) & id_mask_;
        id_cells_[at] = (hash >> 32 << 32) | (static_cast<std::uint64_t>(i) + 1);
    }
    return unique;
}

std::span<const std::uint32_t> Segment::id_order() const {
    // Sorted on first use (a scroll), not at build or open: a memtable freeze runs under the writer lock.
    std::call_once(id_order_once_, [&] {
        id_order_.resize(ids_.size());
        for (std::uint32_t i = 0; i < ids_.size(); ++i) id_order_[i] = i;
        std::sort(id_order_.begin(), id_order_.end(), [&](std::uint32_t a, std::uint32_t b) { return ids_[a] < ids_[b]; });
    });
    return id_order_;
}

std::size_t Segment::first_in_id_order_after(std::string_view after) const {
    if (after.empty()) return 0;
    return static_cast<std::size_t>(
        std::upper_bound(id_order().begin(), id_order().end(), after,
                         [&](std::string_view key, std::uint32_t local) { return key < std::string_view(ids_[local]); }) -
        id_order().begin());
}

Status Segment::build_indexes(const Schema& schema, std::span<const Document* const> docs,
                             const SegmentBuildOptions& options) {
    const std::size_t threads = options.threads;
    text_.resize(schema.fields.size());
    chunk_first_.resize(schema.fields.size());
    chunk_number_.resize(schema.fields.size());
    vectors_.resize(schema.fields.size());
    sparse_.resize(schema.fields.size());
    rescore_.assign(schema.fields.size(), 0);
    on_disk_.assign(schema.fields.size(), 0);
    multi_.resize(schema.fields.size());
    mv_candidates_.assign(schema.fields.size(), 0);
    for (std::size_t fi = 0; fi < schema.fields.size(); ++fi) {
        const FieldSpec& f = schema.fields[fi];
        field_names_.push_back(f.name);
        mv_candidates_[fi] = f.muvera.candidates;
        rescore_[fi] = f.quantization.rescore;
        on_disk_[fi] = f.on_disk ? 1 : 0;
        if (docs.empty()) continue;
        if (f.type == FieldType::kMultiVector) {
            // One token-store document per slot (no tokens where the field is absent), so store
            // document numbers are the segment's slots. Small in-memory segments stay float32 (as the
            // memtable); segments that persist use the field's token codec.
            multivector::TokenStoreBuilder tokens(
                f.dim, options.exact_vectors ? multivector::TokenCodec::kFloat32 : f.token_codec);
            for (const Document* dp : docs) {
                const Document& d = *dp;
                const auto it = d.fields.find(f.name);
                const auto* tv = it == d.fields.end() ? nullptr : std::get_if<TokenVectors>(&it->second);
                if (tv != nullptr && tv->dim == f.dim) {
                    QUIVER_TRY(tokens.add(MatrixView<float>{tv->values.data(), tv->rows(), tv->dim}));
                } else {
                    QUIVER_TRY(tokens.add(MatrixView<float>{nullptr, 0, f.dim}));
                }
            }
            multivector::MultiVectorBuildParams p;
            p.method = f.mv_index == MultiVectorIndexKind::kMuvera && !options.exact_vectors
                           ? multivector::SearchMethod::kMuvera
                           : multivector::SearchMethod::kExact;
            p.fde_index = f.muvera.fde == MuveraFdeKind::kBlocks ? "blocks" : "hnsw";
            p.muvera.k_sim = f.muvera.k_sim;
            p.muvera.d_proj = f.muvera.d_proj;
            p.muvera.r_reps = f.muvera.r_reps;
            p.hnsw.M = f.hnsw_m;
            p.hnsw.ef_construction = f.hnsw_ef_construction;
            p.hnsw.threads = threads;
            auto built = multivector::MultiVectorIndex::build(std::move(tokens).finish(), {}, p);
            if (!built) return std::move(built).error().with_context("indexing field '" + f.name + "'");
            multi_[fi] = std::move(built).value();
            continue;
        }
        if (f.type == FieldType::kSparse) {
            sparse::SparseCollection sc;
            for (std::size_t i = 0; i < docs.size(); ++i) {
                sparse::SparseVector v;
                const auto it = docs[i]->fields.find(f.name);
                const auto* terms = it == docs[i]->fields.end() ? nullptr : std::get_if<SparseTerms>(&it->second);
                if (terms != nullptr) {
                    for (const auto& [term, weight] : *terms) {
                        QUIVER_ASSIGN_OR_RETURN(sparse::TermId id, sc.vocab.add(term));
                        v.terms.push_back(id);
                        v.weights.push_back(weight);
                    }
                }
                QUIVER_TRY(sc.add(std::to_string(i), std::move(v)));
            }
            auto built = sparse::ExactSparseIndex::build(sc);
            if (!built) return std::move(built).error().with_context("indexing field '" + f.name + "'");
            sparse_[fi].emplace(std::move(built).value());
            continue;
        }
        if (f.type == FieldType::kText && f.indexed) {
            std::vector<std::string> names;
            std::vector<std::string> chunks;  // chunked fields: each chunk's text
            std::vector<sparse::Bm25Document> views;
            if (f.chunking) {
                // One BM25 document per chunk, id "<slot>:<chunk>", its text the chunk (title included
                // only in situated chunks), as `quiver eval --chunking` indexes them.
                std::vector<std::uint32_t>& first = chunk_first_[fi];
                first.push_back(0);
                for (std::size_t i = 0; i < docs.size(); ++i) {
                    std::vector<std::string> texts = field_chunks(f, *docs[i]);
                    for (std::size_t j = 0; j < texts.size(); ++j) {
                        names.push_back(std::to_string(i) + ":" + std::to_string(j));
                        chunks.push_back(std::move(texts[j]));
                    }
                    if (chunks.size() >= 0xFFFFFFF0u) return invalid_argument("field '" + f.name + "': too many chunks");
                    first.push_back(static_cast<std::uint32_t>(chunks.size()));
                }
                views.resize(chunks.size());
                for (std::size_t e = 0; e < chunks.size(); ++e) {
                    views[e].id = names[e];
                    views[e].text = chunks[e];
                }
            } else {
                names.resize(docs.size());
                views.resize(docs.size());
                for (std::size_t i = 0; i < docs.size(); ++i) {
                    names[i] = std::to_string(i);
                    views[i].id = names[i];
                    text_views(f, *docs[i], views[i].title, views[i].text);
                }
            }
            sparse::Bm25Index::BuildOptions bm25;
            bm25.params = {schema.bm25_k1, schema.bm25_b};
            bm25.threads = threads;
            // A merge's inputs' documents take their postings from the inputs' indexes, and a frozen
            // memtable's documents their memtable analysis, instead of analysing their texts again:
            // the same index. For the compaction of the 100,000-document segment of issue 10's load,
            // the BM25 build was about half of the build's time (docs/collections.md).
            std::vector<sparse::Bm25Index::Part> parts;
            std::vector<sparse::Bm25AnalysedText> analysed;
            if (!f.chunking) {
                std::size_t covered = 0;
                for (const auto& src : options.text_sources) {
                    const sparse::Bm25Index* b = src.segment != nullptr ? src.segment->text_index(fi) : nullptr;
                    const std::size_t size = src.segment != nullptr ? src.segment->size() : 0;
                    if (src.removed.size() > size) break;
                    if (src.removed.size() == size) continue;  // nothing of it here
                    // Parts form a prefix of the documents: the first source that cannot be one ends it.
                    if (b == nullptr || !(b->analyzer_config() == bm25.analyzer) || b->num_docs() != size ||
                        covered + (size - src.removed.size()) > docs.size()) {
                        break;
                    }
                    parts.push_back({b, src.removed});
                    covered += size - src.removed.size();
                }
                // MemDoc::text is analysed with the default configuration (Memtable::prepare), as
                // segments index text; taken only while the build's is that one.
                if (options.analysed.size() == docs.size() && bm25.analyzer == text::AnalyzerConfig{}) {
                    analysed.resize(docs.size());
                    for (std::size_t i = 0; i < docs.size(); ++i) {
                        const MemDoc* m = options.analysed[i];
                        if (m == nullptr || fi >= m->text.size()) continue;
                        analysed[i] = {m->text[fi].terms, m->text[fi].length};
                        views[i].analysed = &analysed[i];
                    }
                }
            }
            auto built = sparse::Bm25Index::build(views, bm25, parts);
            if (!built) return std::move(built).error().with_context("indexing field '" + f.name + "'");
            text_[fi].emplace(std::move(built).value());
        } else if (f.type == FieldType::kVector) {
            std::vector<float> rows;
            std::vector<Label> labels;
            std::vector<std::string> entry_names;  // chunked: entry e is chunk "<slot>:<chunk>"
            if (chunked_vectors(f)) {
                // One entry per chunk whose vector is not zero, in (slot, chunk) order; label = entry.
                std::vector<std::uint32_t>& first = chunk_first_[fi];
                std::vector<std::uint32_t>& numbers = chunk_number_[fi];
                first.push_back(0);
                for (std::size_t i = 0; i < docs.size(); ++i) {
                    const auto it = docs[i]->fields.find(f.name);
                    const auto* tv = it == docs[i]->fields.end() ? nullptr : std::get_if<TokenVectors>(&it->second);
                    for (std::size_t r = 0; tv != nullptr && tv->dim == f.dim && r < tv->rows(); ++r) {
                        const float* row = tv->values.data() + r * f.dim;
                        if (std::all_of(row, row + f.dim, [](float x) { return x == 0.0f; })) continue;
                        rows.insert(rows.end(), row, row + f.dim);
                        labels.push_back(Label{labels.size()});
                        numbers.push_back(static_cast<std::uint32_t>(r));
                        entry_names.push_back(std::to_string(i) + ":" + std::to_string(r));
                    }
                    if (labels.size() >= 0xFFFFFFF0u) return invalid_argument("field '" + f.name + "': too many chunks");
                    first.push_back(static_cast<std::uint32_t>(labels.size()));
                }
            } else {
                for (std::size_t i = 0; i < docs.size(); ++i) {
                    const auto it = docs[i]->fields.find(f.name);
                    if (it == docs[i]->fields.end()) continue;
                    const auto* v = std::get_if<std::vector<float>>(&it->second);
                    if (v == nullptr) continue;
                    rows.insert(rows.end(), v->begin(), v->end());
                    labels.push_back(Label{i});
                }
            }
            FieldStorage storage;  // exact segments: float32
            if (!options.exact_vectors) {
                QUIVER_ASSIGN_OR_RETURN(storage, field_storage(f, labels.size(), docs.size(), options));
            }
            if (f.memory_budget != 0) on_disk_[fi] = storage.on_disk ? 1 : 0;
            std::unique_ptr<index::VectorIndex> idx;
            std::size_t first_new = 0;  // rows before this one are in the base graph already
            index::HnswIndex* continued = nullptr;  // the base's graph, when continued
            // (A chunked field's entries are renumbered by every merge: its graph is rebuilt.)
            if (f.index == VectorIndexKind::kHnsw && !options.exact_vectors && options.base != nullptr &&
                !chunked_vectors(f) && options.base_removed.size() <= options.base->size() &&
                options.base->size() - options.base_removed.size() <= docs.size()) {
                const auto n_base = static_cast<std::uint32_t>(options.base->size() - options.base_removed.size());
                const std::size_t in_base = static_cast<std::size_t>(
                    std::lower_bound(labels.begin(), labels.end(), Label{n_base}) - labels.begin());
                const std::string path = vector_file(options.base_dir + "/" + dir_name(options.base->id()), f.name);
                auto reopened = index::open_index(path);
                auto* hnsw = reopened ? dynamic_cast<index::HnswIndex*>(reopened->get()) : nullptr;
                // A quantized field continues a graph on the same codes (its codec, trained on the base
                // segment, encodes the new rows); a graph on other codes (or floats) is rebuilt.
                // A quantized graph with deleted documents is rebuilt: with drop() the crash test's SQ8
                // field (thousands of near copies of a few dozen 8-d directions) missed a document's own
                // vector in a search at k = ef = 600 once in 300 rounds, against none in 600 rounds
                // rebuilding (docs/collections.md, session 18).
                const bool droppable = options.base_removed.empty() || storage.codec.kind == index::CodecKind::kNone;
                if (hnsw != nullptr && droppable && hnsw->info().dim == f.dim && hnsw->info().metric == f.metric &&
                    hnsw->params().codec == storage.codec &&
                    hnsw->info().size - std::min(hnsw->info().size, options.base_removed.size()) <= in_base) {
                    // The base's deleted documents leave its graph for good (consolidated, not rebuilt),
                    // and the others are renumbered as this segment numbers them.
                    std::vector<Label> removed(options.base_removed.size());
                    for (std::size_t r = 0; r < removed.size(); ++r) removed[r] = Label{options.base_removed[r]};
                    // The reachability repair runs once, after the rows below are inserted. A drop
                    // that fails (a damaged section of the base's file) leaves the field to a rebuild
                    // from the stored documents, as a base that cannot be opened does.
                    const bool dropped = removed.empty() || hnsw->drop(removed, threads, false).ok();
                    if (dropped && hnsw->info().size == in_base) {
                        continued = hnsw;
                        idx = std::move(reopened).value();
                        first_new = in_base;
                    }
                }
            }
            const bool quantize = storage.codec.kind != index::CodecKind::kNone;
            if (idx) {
                // Continues the base graph: only the rows after it are inserted.
            } else if (quantize && f.index == VectorIndexKind::kFlat) {
                index::CodeIndexParams cp;
                cp.codec = storage.codec;
                cp.nlist = effective_nlist(f, labels.size());
                cp.nprobe = std::min(f.quantization.nprobe, cp.nlist);
                cp.threads = std::max<std::size_t>(threads, 1);
                QUIVER_ASSIGN_OR_RETURN(auto codes, index::CodeIndex::create(f.dim, f.metric, cp));
                idx = std::move(codes);
            } else if (f.index == VectorIndexKind::kFlat || options.exact_vectors) {
                QUIVER_ASSIGN_OR_RETURN(auto flat, index::FlatIndex::create(f.dim, f.metric));
                idx = std::move(flat);
            } else {
                index::HnswParams p;
                p.M = f.hnsw_m;
                p.ef_construction = f.hnsw_ef_construction;
                p.threads = threads;
                if (quantize) p.codec = storage.codec;
                QUIVER_ASSIGN_OR_RETURN(auto hnsw, index::HnswIndex::create(f.dim, f.metric, p));
                idx = std::move(hnsw);
            }
            if (labels.size() > first_new) {
                QUIVER_TRY(idx->add(MatrixView<float>{rows.data() + first_new * f.dim, labels.size() - first_new, f.dim},
                                    std::span<const Label>(labels).subspan(first_new)));
            }
            // A continued graph ends as a rebuilt one does: every live node findable (add() checks only
            // once half the slots are unchecked, so a few rows added to a large graph would go
            // unchecked; the crash test found a document no search reached after such a merge). After
            // a drop the add above ran the check (the drop left every node unchecked) unless nothing
            // was added.
            if (continued != nullptr && continued->has_unchecked_nodes()) continued->repair_reachability();
            // Persisted with the index: its entry ids are the chunk map (Segment::open rebuilds it).
            if (chunked_vectors(f)) idx->set_external_ids(std::move(entry_names));
            vectors_[fi] = std::move(idx);
        }
    }
    return ok_status();
}

Status Segment::persist(const std::string& dir) const {
    if (raw_store_) {
        return failed_precondition("segment " + std::to_string(id_) +
                                   " keeps its documents uncompressed in memory: it is merged, never persisted");
    }
    const std::string seg_dir = dir + "/" + dir_name(id_);
    if (::mkdir(seg_dir.c_str(), 0755) != 0 && errno != EEXIST) return errno_error("creating", seg_dir);
    QUIVER_TRY(storage::sync_directory(dir));
    {
        const std::uint32_t version = !short_fields_.empty() ? kSegmentVersion
                                      : token_values_        ? kSegmentVersionV3
                                                             : kSegmentVersionV2;
        QUIVER_ASSIGN_OR_RETURN(auto w, storage::FileWriter::create(seg_dir + "/docs.qvr", kSegmentKind, version));
        ByteWriter meta;
        meta.u64(ids_.size());
        for (std::size_t i = 0; i < ids_.size(); ++i) {
            meta.str(ids_[i]);
            meta.u64(seqs_[i]);
            encode_document(meta, attrs_[i]);
        }
        meta.u64(block_offsets_.size());
        for (auto o : block_offsets_) meta.u64(o);
        if (!short_fields_.empty()) {
            meta.u32(static_cast<std::uint32_t>(short_fields_.size()));
            for (const std::string& name : short_fields_) meta.str(name);
            meta.u64(short_blob_.size());
            for (auto o : short_offsets_) meta.u64(o);
        }
        QUIVER_TRY(w.write_string(meta.bytes()));
        if (!short_fields_.empty()) QUIVER_TRY(w.write(short_blob_.data(), short_blob_.size()));
        QUIVER_TRY(w.write(blob_.data(), blob_.size()));
        QUIVER_TRY(w.finish());
    }
    for (std::size_t fi = 0; fi < field_names_.size(); ++fi) {
        if (text_[fi]) QUIVER_TRY(text_[fi]->save(text_file(seg_dir, field_names_[fi])));
        if (vectors_[fi]) QUIVER_TRY(vectors_[fi]->save(vector_file(seg_dir, field_names_[fi])));
        if (sparse_[fi]) QUIVER_TRY(sparse_[fi]->save(sparse_file(seg_dir, field_names_[fi])));
        if (multi_[fi]) QUIVER_TRY(multi_[fi]->save(multivector_file(seg_dir, field_names_[fi])));
    }
    if (!payload_.fields().empty()) QUIVER_TRY(payload_.save(payload_file(seg_dir)));
    return storage::sync_directory(seg_dir);
}

Result<std::shared_ptr<Segment>> Segment::open(const std::string& dir, std::uint64_t id, const Schema& schema) {
    const std::string seg_dir = dir + "/" + dir_name(id);
    std::shared_ptr<Segment> seg(new Segment());
    seg->id_ = id;
    QUIVER_ASSIGN_OR_RETURN(auto mapped, storage::MappedFile::open(seg_dir + "/docs.qvr"));
    seg->mapping_ = std::make_shared<storage::MappedFile>(std::move(mapped));
    std::uint32_t version = 0;
    QUIVER_ASSIGN_OR_RETURN(auto reader,
                            storage::open_payload(*seg->mapping_, kSegmentKind, kSegmentVersion, &version));
    seg->version_ = version;
    seg->docs_per_block_ = version == 1 ? kDocsPerBlockV1 : kDocsPerBlock;
    for (const auto& f : schema.fields) seg->token_values_ = seg->token_values_ || holds_token_values(f);
    QUIVER_ASSIGN_OR_RETURN(std::string meta_bytes, reader.read_string());
    ByteReader meta(meta_bytes);
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t n, meta.u64());
    if (n > meta.remaining()) return data_loss("'" + seg_dir + "': document count beyond the file");
    for (std::uint64_t i = 0; i < n; ++i) {
        QUIVER_ASSIGN_OR_RETURN(std::string did, meta.str());
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t s, meta.u64());
        QUIVER_ASSIGN_OR_RETURN(Document a, decode_document(meta));
        seg->ids_.push_back(std::move(did));
        seg->seqs_.push_back(s);
        seg->attrs_.push_back(std::move(a));
    }
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t nb, meta.u64());
    const std::size_t per_block = seg->docs_per_block_;
    if (nb > meta.remaining() / 8 + 1 || nb != (n + per_block - 1) / per_block + 1) {
        return data_loss("'" + seg_dir + "': bad block table");
    }
    for (std::uint64_t i = 0; i < nb; ++i) {
        QUIVER_ASSIGN_OR_RETURN(std::uint64_t o, meta.u64());
        if (!seg->block_offsets_.empty() && o < seg->block_offsets_.back()) return data_loss("'" + seg_dir + "': block table");
        seg->block_offsets_.push_back(o);
    }
    std::uint64_t short_bytes = 0;
    if (version >= 4) {
        // The short-field column: names (sorted, unique), its size, one offset per slot and its end.
        QUIVER_ASSIGN_OR_RETURN(std::uint32_t k, meta.u32());
        if (k == 0 || k > schema.fields.size()) return data_loss("'" + seg_dir + "': short-field count");
        for (std::uint32_t i = 0; i < k; ++i) {
            QUIVER_ASSIGN_OR_RETURN(std::string name, meta.str());
            if (!seg->short_fields_.empty() && !(seg->short_fields_.back() < name)) {
                return data_loss("'" + seg_dir + "': short-field names out of order");
            }
            const FieldSpec* f = schema.find(name);
            if (f == nullptr || f->type != FieldType::kText) {
                return data_loss("'" + seg_dir + "': short field '" + name + "' is not a text field of the schema");
            }
            seg->short_fields_.push_back(std::move(name));
        }
        QUIVER_ASSIGN_OR_RETURN(short_bytes, meta.u64());
        if (short_bytes > reader.remaining() || n + 1 > meta.remaining() / 8) {
            return data_loss("'" + seg_dir + "': short-field column beyond the file");
        }
        seg->short_offsets_.reserve(n + 1);
        for (std::uint64_t i = 0; i <= n; ++i) {
            QUIVER_ASSIGN_OR_RETURN(std::uint64_t o, meta.u64());
            const bool ordered = seg->short_offsets_.empty() ? o == 0 : o >= seg->short_offsets_.back();
            if (!ordered || o > short_bytes) return data_loss("'" + seg_dir + "': short-field column offsets");
            seg->short_offsets_.push_back(o);
        }
        if (seg->short_offsets_.back() != short_bytes) return data_loss("'" + seg_dir + "': short-field column size");
    }
    if (version >= 4 && !meta.done()) return data_loss("'" + seg_dir + "': trailing bytes after the document table");
    if (seg->block_offsets_.back() != reader.remaining() - short_bytes) {
        return data_loss("'" + seg_dir + "': document store size");
    }
    seg->short_blob_ = seg->mapping_->bytes().subspan(reader.offset(), short_bytes);
    seg->blob_ = seg->mapping_->bytes().subspan(reader.offset() + short_bytes, reader.remaining() - short_bytes);
    seg->attribute_fields_ = attribute_field_names(schema);
    if (!seg->index_ids()) return data_loss("'" + seg_dir + "': duplicate document ids");
    if (has_payload_index(schema)) {
        QUIVER_ASSIGN_OR_RETURN(seg->payload_, PayloadIndex::open(payload_file(seg_dir)));
        std::vector<std::pair<std::string, FieldType>> want;
        std::vector<std::pair<std::string, FieldType>> have;
        for (const auto& f : schema.fields) {
            if (f.payload_index) want.emplace_back(f.name, f.type);
        }
        for (const auto& f : seg->payload_.fields()) have.emplace_back(f.name, f.type);
        if (seg->payload_.size() != n || want != have) {
            return data_loss("'" + payload_file(seg_dir) + "': payload index does not match the segment");
        }
    }
    seg->text_.resize(schema.fields.size());
    seg->chunk_first_.resize(schema.fields.size());
    seg->chunk_number_.resize(schema.fields.size());
    seg->vectors_.resize(schema.fields.size());
    seg->sparse_.resize(schema.fields.size());
    seg->rescore_.assign(schema.fields.size(), 0);
    seg->on_disk_.assign(schema.fields.size(), 0);
    seg->multi_.resize(schema.fields.size());
    seg->mv_candidates_.assign(schema.fields.size(), 0);
    for (std::size_t fi = 0; fi < schema.fields.size(); ++fi) {
        const FieldSpec& f = schema.fields[fi];
        seg->field_names_.push_back(f.name);
        seg->mv_candidates_[fi] = f.muvera.candidates;
        seg->rescore_[fi] = f.quantization.rescore;
        seg->on_disk_[fi] = f.on_disk || f.memory_budget != 0 ? 1 : 0;
        if (n == 0) continue;
        if (f.type == FieldType::kMultiVector) {
            const std::string path = multivector_file(seg_dir, f.name);
            QUIVER_ASSIGN_OR_RETURN(auto mv, multivector::MultiVectorIndex::open(path));
            // Persisted segments are always built with the schema's method (merges rebuild).
            const auto want = f.mv_index == MultiVectorIndexKind::kMuvera ? multivector::SearchMethod::kMuvera
                                                                          : multivector::SearchMethod::kExact;
            if (mv->size() != n || mv->dim() != f.dim || mv->method() != want || mv->store().codec() != f.token_codec) {
                return data_loss("'" + path + "': multi-vector index does not match the segment (" +
                                 std::to_string(mv->size()) + " documents of dim " + std::to_string(mv->dim()) + ", " +
                                 std::string(multivector::to_string(mv->method())) + ", " +
                                 std::string(multivector::to_string(mv->store().codec())) + " tokens)");
            }
            if (want == multivector::SearchMethod::kMuvera) QUIVER_TRY(check_muvera_layout(path, *mv, f.muvera));
            seg->multi_[fi] = std::move(mv);
            continue;
        }
        if (f.type == FieldType::kSparse) {
            QUIVER_ASSIGN_OR_RETURN(auto sp, sparse::ExactSparseIndex::open(sparse_file(seg_dir, f.name)));
            if (sp.size() != n) return data_loss("'" + seg_dir + "': sparse index size mismatch");
            seg->sparse_[fi].emplace(std::move(sp));
            continue;
        }
        if (f.type == FieldType::kText && f.indexed) {
            QUIVER_ASSIGN_OR_RETURN(auto bm, sparse::Bm25Index::open(text_file(seg_dir, f.name)));
            if (f.chunking) {
                // Chunk entries "<slot>:<chunk>" in slot order, chunks 0, 1, ... of every slot.
                std::vector<std::uint32_t>& first = seg->chunk_first_[fi];
                first.reserve(n + 1);
                for (std::uint32_t e = 0; e < bm.num_docs(); ++e) {
                    std::uint32_t slot = 0;
                    std::uint32_t chunk = 0;
                    const bool ok = parse_chunk_id(bm.doc_id(e), slot, chunk);
                    const bool next_slot = ok && chunk == 0 && slot == first.size();
                    const bool same_slot = ok && !first.empty() && slot + 1 == first.size() && chunk == e - first.back();
                    if (!next_slot && !same_slot) {
                        return data_loss("'" + text_file(seg_dir, f.name) + "': chunk entry " + std::to_string(e) + " ('" +
                                         std::string(bm.doc_id(e)) + "') is out of order");
                    }
                    if (next_slot) first.push_back(e);
                }
                if (first.size() != n) return data_loss("'" + seg_dir + "': chunked text index does not cover the segment");
                first.push_back(bm.num_docs());
            } else if (bm.num_docs() != n) {
                return data_loss("'" + seg_dir + "': text index size mismatch");
            }
            seg->text_[fi].emplace(std::move(bm));
        } else if (f.type == FieldType::kVector) {
            // verify: a damaged segment refuses the collection's open (docs/collections.md, recovery), so
            // the sections an index would check on first use are checked here.
            QUIVER_ASSIGN_OR_RETURN(auto vi, index::open_index(vector_file(seg_dir, f.name),
                                                               {.vectors_on_disk = seg->on_disk_[fi] != 0, .verify = true}));
            if (vi->info().dim != f.dim || vi->info().metric != f.metric) {
                return data_loss("'" + seg_dir + "': vector index of field '" + f.name + "' does not match the schema");
            }
            if (chunked_vectors(f)) {
                QUIVER_TRY(seg->open_chunk_map(fi, *vi, vector_file(seg_dir, f.name)));
            }
            seg->vectors_[fi] = std::move(vi);
        }
    }
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(seg_dir, ec)) {
        seg->bytes_ += e.is_regular_file(ec) ? e.file_size(ec) : 0;
    }
    seg->measure_vectors();
    return seg;
}

Status Segment::reopen_on_disk_vectors(const std::string& dir) {
    const std::string seg_dir = dir + "/" + dir_name(id_);
    for (std::size_t fi = 0; fi < vectors_.size(); ++fi) {
        if (!vectors_[fi] || on_disk_[fi] == 0) continue;
        const std::string path = vector_file(seg_dir, field_names_[fi]);
        QUIVER_ASSIGN_OR_RETURN(auto vi, index::open_index(path, {.vectors_on_disk = true}));
        if (vi->info().size != vectors_[fi]->info().size) {
            return data_loss("'" + path + "': reopened vector index does not match the one written");
        }
        vectors_[fi] = std::move(vi);
    }
    measure_vectors();
    return ok_status();
}

void Segment::measure_vectors() {
    VectorFootprint out;
    vector_storage_.clear();
    for (std::size_t fi = 0; fi < vectors_.size(); ++fi) {
        const auto& v = vectors_[fi];
        if (!v) continue;
        const std::uint64_t memory = v->memory_bytes();
        out.memory_bytes += memory;
        const std::uint64_t floats = static_cast<std::uint64_t>(v->info().size) * v->info().dim * sizeof(float);
        bool on_disk = false;
        if (const auto* h = dynamic_cast<const index::HnswIndex*>(v.get()); h != nullptr && h->vectors_on_disk()) {
            on_disk = true;
        } else if (const auto* c = dynamic_cast<const index::CodeIndex*>(v.get()); c != nullptr && c->vectors_on_disk()) {
            on_disk = true;
        }
        if (on_disk) out.disk_bytes += floats;
        vector_storage_.push_back({fi, codec_name(*v), on_disk, memory});
    }
    vector_footprint_ = out;
}

Result<std::string> Segment::raw_block(std::size_t b) const {
    const auto begin = block_offsets_[b];
    const auto end = block_offsets_[b + 1];
    if (end - begin < 4) return data_loss("segment " + std::to_string(id_) + ": empty block");
    std::uint32_t raw_size = 0;
    std::memcpy(&raw_size, blob_.data() + begin, 4);
    if (raw_size > (1u << 30)) return data_loss("segment " + std::to_string(id_) + ": block size");
    const auto* in = reinterpret_cast<const Bytef*>(blob_.data() + begin + 4);
    const std::size_t in_len = static_cast<std::size_t>(end - begin - 4);
    if (raw_store_) {
        if (in_len != raw_size) return data_loss("segment " + std::to_string(id_) + ": block size");
        return std::string(reinterpret_cast<const char*>(in), in_len);
    }
    std::string raw(raw_size, '\0');
    if (version_ == 1) {
        uLongf out_len = raw_size;
        if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &out_len, in, static_cast<uLong>(in_len)) != Z_OK ||
            out_len != raw_size) {
            return data_loss("segment " + std::to_string(id_) + ": corrupt document block");
        }
        return raw;
    }
    // One decompression context per thread, reused: ZSTD_decompress() allocates and initialises a new
    // one per call, which was 9% of a server's CPU fetching the stored fields of search hits.
    thread_local const std::unique_ptr<ZSTD_DCtx, std::size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    if (!dctx) return resource_exhausted("zstd: no decompression context");
    const std::size_t out_len = ZSTD_decompressDCtx(dctx.get(), raw.data(), raw.size(), in, in_len);
    if (ZSTD_isError(out_len) != 0 || out_len != raw_size) {
        return data_loss("segment " + std::to_string(id_) + ": corrupt document block");
    }
    return raw;
}

Result<Document> Segment::short_entry(std::uint32_t local) const {
    const std::uint64_t begin = short_offsets_[local];
    const std::uint64_t end = short_offsets_[local + 1];
    ByteReader r(std::string_view(reinterpret_cast<const char*>(short_blob_.data()) + begin, end - begin));
    auto entry = decode_document(r);
    if (!entry || !r.done()) return data_loss("segment " + std::to_string(id_) + ": corrupt short-field entry");
    return std::move(entry).value();
}

Status Segment::add_short_fields(std::uint32_t local, Document& d) const {
    if (short_offsets_.empty()) return ok_status();
    QUIVER_ASSIGN_OR_RETURN(Document entry, short_entry(local));
    for (auto& [name, v] : entry.fields) d.fields.insert_or_assign(name, std::move(v));
    return ok_status();
}

Result<std::vector<Document>> Segment::decode_block(std::size_t b) const {
    QUIVER_ASSIGN_OR_RETURN(std::string raw, raw_block(b));
    ByteReader r(raw);
    std::vector<Document> out;
    const std::size_t end_doc = std::min(ids_.size(), (b + 1) * docs_per_block_);
    for (std::size_t i = b * docs_per_block_; i < end_doc; ++i) {
        QUIVER_ASSIGN_OR_RETURN(Document d, decode_document(r));
        QUIVER_TRY(add_short_fields(static_cast<std::uint32_t>(i), d));
        out.push_back(std::move(d));
    }
    return out;
}

Result<std::vector<Document>> Segment::documents() const {
    std::vector<Document> out;
    out.reserve(ids_.size());
    for (std::size_t b = 0; b + 1 < block_offsets_.size(); ++b) {
        QUIVER_ASSIGN_OR_RETURN(std::vector<Document> block, decode_block(b));
        for (Document& d : block) out.push_back(std::move(d));
    }
    if (out.size() != ids_.size()) return data_loss("segment " + std::to_string(id_) + ": document count");
    return out;
}

Result<Document> Segment::document(std::uint32_t local) const {
    if (local >= ids_.size()) return out_of_range("document slot " + std::to_string(local));
    const std::size_t b = local / docs_per_block_;
    QUIVER_ASSIGN_OR_RETURN(std::string raw, raw_block(b));
    ByteReader r(raw);
    for (std::size_t i = b * docs_per_block_;; ++i) {
        QUIVER_ASSIGN_OR_RETURN(Document d, decode_document(r));
        if (i == local) {
            QUIVER_TRY(add_short_fields(local, d));
            return d;
        }
    }
}

Result<Document> Segment::document(std::uint32_t local, std::span<const std::string> fields) const {
    if (local >= ids_.size()) return out_of_range("document slot " + std::to_string(local));
    const bool direct = std::all_of(fields.begin(), fields.end(), [&](const std::string& name) {
        return contains_name(attribute_fields_, name) || contains_name(short_fields_, name);
    });
    Document all;
    if (direct) {
        // Attributes and short fields only: no block is decompressed.
        if (!short_offsets_.empty()) {
            QUIVER_ASSIGN_OR_RETURN(all, short_entry(local));
        }
    } else {
        QUIVER_ASSIGN_OR_RETURN(all, document(local));
    }
    Document out;
    out.id = ids_[local];
    for (const std::string& name : fields) {
        if (out.fields.count(name) != 0) continue;  // named twice
        if (auto it = all.fields.find(name); it != all.fields.end()) {
            out.fields.insert_or_assign(name, std::move(it->second));
        } else if (direct) {
            const auto& attrs = attrs_[local].fields;
            if (auto at = attrs.find(name); at != attrs.end()) out.fields.insert_or_assign(name, at->second);
        }
    }
    return out;
}

namespace {
// A double floor from float scores as the largest float not above it (so no score at the floor is lost).
float float_floor(double min_score) {
    if (!(min_score > 0.0)) return 0.0f;
    float f = static_cast<float>(min_score);
    if (static_cast<double>(f) > min_score) f = std::nextafter(f, 0.0f);
    return f;
}
}  // namespace

std::vector<ScoredDoc> Segment::search_text(std::size_t field, const sparse::Bm25QueryStats& stats, std::size_t k,
                                            const AllowedDocs& allowed, sparse::TopKStats* walk,
                                            const sparse::FilterWalkParams& params, double min_score) const {
    const sparse::Bm25Index* bm = text_index(field);
    if (bm == nullptr || k == 0) return {};
    std::vector<ScoredDoc> out;
    const std::span<const std::uint32_t> first = chunk_offsets(field);
    if (!first.empty()) {
        // The parents' mask as a mask of their chunk entries.
        Bitmap deleted;
        Bitmap filter;
        AllowedDocs chunks;
        if (allowed.deleted != nullptr) {
            deleted = chunk_entries(field, *allowed.deleted);
            chunks.deleted = &deleted;
        }
        if (allowed.filter != nullptr) {
            filter = chunk_entries(field, *allowed.filter);
            chunks.filter = &filter;
        }
        for (const auto& h : bm->search_with_stats(stats, k, &chunks, walk, false, params)) {
            const auto parent = static_cast<std::uint32_t>(std::upper_bound(first.begin(), first.end(), h.doc) - first.begin() - 1);
            out.push_back({parent, static_cast<double>(h.score), h.doc - first[parent]});
        }
        return out;
    }
    for (const auto& h : bm->search_with_stats(stats, k, &allowed, walk, false, params, float_floor(min_score))) {
        out.push_back({h.doc, static_cast<double>(h.score)});
    }
    return out;
}

Bitmap Segment::chunk_entries(std::size_t field, const Bitmap& docs) const {
    const std::span<const std::uint32_t> first = chunk_offsets(field);
    std::vector<std::uint32_t> entries;
    docs.for_each([&](std::uint32_t d) {
        if (d + 1 >= first.size()) return;
        for (std::uint32_t e = first[d]; e < first[d + 1]; ++e) entries.push_back(e);
    });
    return Bitmap::of(entries);
}

std::vector<ScoredDoc> Segment::search_sparse(std::size_t field, const SparseTerms& query, std::size_t k,
                                              const AllowedDocs& allowed, sparse::TopKStats* walk,
                                              const sparse::FilterWalkParams& params, double min_score) const {
    if (field >= sparse_.size() || !sparse_[field] || k == 0) return {};
    const sparse::ExactSparseIndex& idx = *sparse_[field];
    sparse::SparseVector q;
    for (const auto& [term, weight] : query) {
        auto id = idx.vocab().find(term);
        if (!id) continue;  // no document of this segment has the term
        q.terms.push_back(*id);
        q.weights.push_back(weight);
    }
    if (!sparse::canonicalize(q, "query")) return {};
    std::vector<ScoredDoc> out;
    for (const auto& h : idx.search(q.view(), k, walk, &allowed, params, float_floor(min_score))) {
        out.push_back({h.doc, static_cast<double>(h.score)});
    }
    return out;
}

Result<std::vector<ScoredDoc>> Segment::search_vector(std::size_t field, std::span<const float> query, std::size_t k,
                                                      std::size_t ef, const AllowedDocs& allowed,
                                                      index::FilterPlan* plan,
                                                      const index::PlannerParams& planner, double min_score) const {
    const std::span<const std::uint32_t> first = chunk_offsets(field);
    if (first.empty()) return search_vector_index(field, query, k, ef, allowed, size(), plan, planner, min_score);
    // A chunked vector field: the parents' mask as a mask of their chunk entries; entries back to
    // (parent slot, chunk).
    Bitmap deleted;
    Bitmap filter;
    AllowedDocs entries;
    if (allowed.deleted != nullptr) {
        deleted = chunk_entries(field, *allowed.deleted);
        entries.deleted = &deleted;
    }
    if (allowed.filter != nullptr) {
        filter = chunk_entries(field, *allowed.filter);
        entries.filter = &filter;
    }
    const std::vector<std::uint32_t>& numbers = chunk_number_[field];
    QUIVER_ASSIGN_OR_RETURN(auto found, search_vector_index(field, query, k, ef, entries, numbers.size(), plan, planner));
    for (ScoredDoc& h : found) {
        const std::uint32_t e = h.local;
        if (e >= numbers.size()) {
            return data_loss("segment " + std::to_string(id_) + ": vector index of field '" + field_names_[field] +
                             "' returned entry " + std::to_string(e) + " beyond its " + std::to_string(numbers.size()) +
                             " chunks");
        }
        h.local = static_cast<std::uint32_t>(std::upper_bound(first.begin(), first.end(), e) - first.begin() - 1);
        h.chunk = numbers[e];
    }
    return found;
}

Status Segment::open_chunk_map(std::size_t field, const index::VectorIndex& vi, const std::string& path) {
    // Entry e of the index (label e) is chunk "<slot>:<chunk>"; entries ascend by (slot, chunk), every
    // slot below the segment's size. Slots without a chunk have none.
    const std::vector<std::string>& names = vi.external_ids();
    const std::size_t n = size();
    if (names.size() != vi.info().size) {
        return data_loss("'" + path + "': chunked vector index has " + std::to_string(names.size()) + " chunk ids for " +
                         std::to_string(vi.info().size) + " vectors");
    }
    if (names.size() >= 0xFFFFFFF0u) return data_loss("'" + path + "': too many chunk entries");
    std::vector<std::uint32_t>& first = chunk_first_[field];  // first.size() - 1 = the previous entry's slot
    std::vector<std::uint32_t>& numbers = chunk_number_[field];
    first.clear();
    numbers.clear();
    numbers.reserve(names.size());
    for (std::uint32_t e = 0; e < names.size(); ++e) {
        std::uint32_t slot = 0;
        std::uint32_t chunk = 0;
        const bool ok = parse_chunk_id(names[e], slot, chunk) && slot < n &&
                        (slot + 1 > first.size() || (slot + 1 == first.size() && chunk > numbers.back()));
        if (!ok) {
            return data_loss("'" + path + "': chunk entry " + std::to_string(e) + " ('" + names[e] + "') is out of order");
        }
        while (first.size() < slot + 1) first.push_back(e);  // slots before `slot` end here
        numbers.push_back(chunk);
    }
    while (first.size() < n + 1) first.push_back(static_cast<std::uint32_t>(names.size()));
    return ok_status();
}

Result<std::vector<ScoredDoc>> Segment::search_vector_index(std::size_t field, std::span<const float> query,
                                                            std::size_t k, std::size_t ef, const AllowedDocs& allowed,
                                                            std::size_t items, index::FilterPlan* plan,
                                                            const index::PlannerParams& planner,
                                                            double min_score) const {
    std::vector<ScoredDoc> out;
    if (field >= vectors_.size() || !vectors_[field] || k == 0 || vectors_[field]->info().size == 0) return out;
    if (allowed.filter != nullptr && allowed.deleted == nullptr) {
        // Every document of the segment passes (so none is deleted): the unchecked search.
        const bool all = allowed.filter->cardinality() == items;
        index::FilteredSearchParams fp;
        fp.k = k;
        fp.ef = ef;
        fp.planner = planner;
        if (rescore_[field] > 0) {
            fp.rescore = rescore_[field];
            fp.ef = std::max({ef == 0 ? std::size_t{64} : ef, rescore_[field], k});
        }
        QUIVER_ASSIGN_OR_RETURN(auto found, index::filtered_search(*vectors_[field], query, all ? nullptr : allowed.filter,
                                                                                   fp, plan));
        for (const auto& n : found) {
            out.push_back({static_cast<std::uint32_t>(to_int(n.label)), -static_cast<double>(n.distance)});
        }
        return out;
    }
    // Deletes (and a filter, if any) leaving at least half of the segment: HNSW walks its checked
    // sorted beam instead of two heaps (the same results; LabelFilter::mostly_allows).
    const std::uint64_t passing = allowed.filter != nullptr ? allowed.filter->cardinality() : items;
    const std::uint64_t dead = allowed.deleted != nullptr ? allowed.deleted->cardinality() : 0;
    const index::AllowedLabels labels(allowed, passing >= dead && (passing - dead) * 2 >= items);
    index::SearchParams p;
    p.k = k;
    p.ef = ef;
    if (rescore_[field] > 0) {  // quantized: hnsw re-scores its final beam, code indexes their best `rescore`
        p.rescore = rescore_[field];
        p.ef = std::max({ef == 0 ? std::size_t{64} : ef, rescore_[field], k});
    }
    p.filter = allowed.restricts() ? &labels : nullptr;
    if (min_score > -std::numeric_limits<double>::infinity()) {
        // Scores are -distance of float distances (exact both ways). Coded graphs (quantized and
        // on-disk fields) and flat indexes ignore the bar (SearchParams::bound).
        p.bound = static_cast<float>(-min_score);
    }
    QUIVER_ASSIGN_OR_RETURN(auto res, vectors_[field]->search(MatrixView<float>{query.data(), 1, query.size()}, p));
    for (std::size_t j = 0; j < res.count(0); ++j) {
        out.push_back({static_cast<std::uint32_t>(to_int(res.label(0, j))), -static_cast<double>(res.distance(0, j))});
    }
    return out;
}

Result<std::vector<ScoredDoc>> Segment::search_multivector(std::size_t field, MatrixView<float> query, std::size_t k,
                                                           std::size_t ef, const AllowedDocs& allowed,
                                                           const char** method) const {
    std::vector<ScoredDoc> out;
    if (field >= multi_.size() || !multi_[field] || k == 0 || query.rows == 0) return out;
    const multivector::MultiVectorIndex& mv = *multi_[field];
    if (query.dim != mv.dim()) {
        return invalid_argument("query token vectors have dimension " + std::to_string(query.dim) + ", the field has " +
                                std::to_string(mv.dim()));
    }
    multivector::MaxSimScratch scratch;
    std::vector<multivector::Hit> hits;
    // Exact MaxSim over the documents a (selective) filter allows.
    auto exact_filtered = [&] {
        if (method != nullptr) *method = "maxsim_exact";
        std::vector<std::uint32_t> cands;
        allowed.filter->for_each([&](std::uint32_t d) {
            if (d < size() && allowed.allows(d)) cands.push_back(d);
        });
        return multivector::rerank(mv.store(), query, cands, k, scratch);
    };
    // MUVERA candidates: the field's `candidates` (a search's ef replaces it), or, for fields whose
    // option is 0 (those stored before it existed), max(10 k, 100, ef).
    const std::size_t cand = mv_candidates_[field] > 0 ? std::max(k, ef > 0 ? ef : mv_candidates_[field])
                                                       : std::max({k, std::size_t{100}, 10 * k, ef});
    if (mv.method() == multivector::SearchMethod::kExact) {
        if (method != nullptr) *method = "maxsim_exact";
        if (!allowed.restricts()) {
            hits = multivector::exact_search(mv.store(), query, k, scratch);
        } else {
            std::vector<std::uint32_t> cands;
            for (std::uint32_t d = 0; d < size(); ++d) {
                if (allowed.allows(d) && mv.store().tokens(d) > 0) cands.push_back(d);
            }
            hits = multivector::rerank(mv.store(), query, cands, k, scratch);
        }
    } else if (const multivector::FdeBlocks* blocks = mv.fde_blocks(); blocks != nullptr) {
        if (allowed.filter != nullptr && allowed.filter->cardinality() <= cand) {
            hits = exact_filtered();  // no more allowed documents than candidates: score them all
        } else {
            // The scan scores every document; excluded ones (deleted, filtered out, no tokens) are
            // set to -infinity before the best `cand` are taken.
            if (method != nullptr) *method = "muvera_blocks";
            std::vector<float> fq(mv.muvera()->fde_dim());
            mv.muvera()->encode_query(query, fq.data());
            constexpr float kExcluded = -std::numeric_limits<float>::infinity();
            std::vector<float> scores;
            blocks->score_all(fq.data(), scores);
            const std::size_t n = scores.size();
            if (allowed.filter != nullptr) {
                std::vector<float> kept(n, kExcluded);
                allowed.filter->for_each([&](std::uint32_t d) {
                    if (d < n) kept[d] = scores[d];
                });
                scores.swap(kept);
            }
            if (allowed.deleted != nullptr) {
                allowed.deleted->for_each([&](std::uint32_t d) {
                    if (d < n) scores[d] = kExcluded;
                });
            }
            const multivector::TokenStore& store = mv.store();
            for (std::size_t d = 0; d < n; ++d) {
                if (store.tokens(d) == 0) scores[d] = kExcluded;
            }
            const std::vector<std::uint32_t> cands = multivector::FdeBlocks::best(scores, cand);
            hits = multivector::rerank(store, query, cands, k, scratch);
        }
    } else if (allowed.filter != nullptr && allowed.filter->cardinality() <= 4 * cand) {
        // A selective filter: scoring every allowed document costs about what re-ranking would, and the
        // graph walk might not reach enough of them.
        hits = exact_filtered();
    } else {
        if (method != nullptr) *method = "muvera_rerank";
        std::vector<float> fq(mv.muvera()->fde_dim());
        mv.muvera()->encode_query(query, fq.data());
        const index::AllowedLabels labels(allowed);
        index::SearchParams p;
        p.k = cand;
        p.ef = cand;
        p.threads = 1;
        p.filter = allowed.restricts() ? &labels : nullptr;
        QUIVER_ASSIGN_OR_RETURN(auto found, mv.fde_index()->search(MatrixView<float>{fq.data(), 1, fq.size()}, p));
        std::vector<std::uint32_t> cands;
        cands.reserve(found.count(0));
        for (std::size_t j = 0; j < found.count(0); ++j) cands.push_back(static_cast<std::uint32_t>(to_int(found.label(0, j))));
        hits = multivector::rerank(mv.store(), query, cands, k, scratch);
    }
    out.reserve(hits.size());
    for (const auto& h : hits) out.push_back({h.doc, static_cast<double>(h.score)});
    return out;
}

Bitmap Segment::matching(const Filter& filter, FilterEvalStats* stats) const {
    return evaluate_filter(filter, payload_, attrs_, stats);
}

namespace {

// A filter's identity: every member, in a fixed order (the cache key of Segment::matching).
void encode_filter(ByteWriter& w, const Filter& f) {
    w.u8(static_cast<std::uint8_t>(f.op));
    w.str(f.field);
    w.u32(static_cast<std::uint32_t>(f.values.size()));
    for (const FieldValue& v : f.values) encode_value(w, v);
    for (const auto* b : {&f.gt, &f.gte, &f.lt, &f.lte}) {
        w.u8(b->has_value() ? 1 : 0);
        if (b->has_value()) w.f64(**b);
    }
    w.u32(static_cast<std::uint32_t>(f.children.size()));
    for (const Filter& c : f.children) encode_filter(w, c);
}

}  // namespace

Result<Bitmap> Segment::matching(const Filter& filter, FilterBudget& budget, FilterEvalStats* stats) const {
    ByteWriter kw;
    encode_filter(kw, filter);
    std::string key = std::move(kw.bytes());
    {
        std::lock_guard lock(filter_cache_mu_);
        for (auto it = filter_cache_.begin(); it != filter_cache_.end(); ++it) {
            if (it->key != key) continue;
            CachedFilter hit = std::move(*it);
            filter_cache_.erase(it);
            budget.charge(hit.units);
            if (stats != nullptr) {
                stats->index_lookups += hit.stats.index_lookups;
                stats->docs_scanned += hit.stats.docs_scanned;
            }
            Bitmap out = *hit.bits;
            filter_cache_.push_back(std::move(hit));
            QUIVER_TRY(budget.status());
            return out;
        }
    }
    const std::uint64_t used_before = budget.used();
    FilterEvalStats own;
    QUIVER_ASSIGN_OR_RETURN(Bitmap bits, evaluate_filter(filter, payload_, attrs_, budget, &own));
    if (stats != nullptr) {
        stats->index_lookups += own.index_lookups;
        stats->docs_scanned += own.docs_scanned;
    }
    std::lock_guard lock(filter_cache_mu_);
    if (filter_cache_.size() >= kFilterCacheEntries) filter_cache_.erase(filter_cache_.begin());
    filter_cache_.push_back({std::move(key), std::make_shared<const Bitmap>(bits), budget.used() - used_before, own});
    return bits;
}

namespace {
// How many documents of `members` (BM25 document numbers) the postings of `id` hold: a seek per member
// when they are few against the list, else one pass over the list.
std::uint32_t count_in_postings(const sparse::Bm25Index& bm, sparse::TermId id, const Bitmap& members) {
    const std::uint64_t m = members.cardinality();
    if (m == 0) return 0;
    sparse::PostingCursor c = bm.postings().cursor(id);
    std::uint32_t n = 0;
    if (m * 16 < c.doc_freq()) {
        members.for_each([&](std::uint32_t d) {
            if (c.seek(d) == d) ++n;
        });
        return n;
    }
    AscendingMembership in(members);
    c.for_each_run_through(sparse::kTerminated - 1, [&](const sparse::DocIndex* docs, const float*, std::uint32_t count,
                                                         float) {
        for (std::uint32_t i = 0; i < count; ++i) n += in.contains(docs[i]) ? 1u : 0u;
    });
    return n;
}
}  // namespace

Status Segment::add_text_stats(const Schema& schema, const Bitmap& docs, std::vector<DeadTextStats>& acc,
                               TextStatsMethod method) const {
    acc.resize(schema.fields.size());
    if (docs.empty()) return ok_status();
    std::vector<std::pair<std::size_t, text::Analyzer>> analysed;  // text fields counted by re-analysis
    for (std::size_t fi = 0; fi < schema.fields.size() && fi < text_.size(); ++fi) {
        if (!text_[fi]) continue;
        const sparse::Bm25Index& bm = *text_[fi];
        DeadTextStats& d = acc[fi];
        if (d.doc_freq.empty()) d.doc_freq.assign(bm.num_terms(), 0);
        if (method == TextStatsMethod::kAnalysis) {
            QUIVER_ASSIGN_OR_RETURN(auto analyzer, text::Analyzer::create(bm.analyzer_config()));
            analysed.emplace_back(fi, std::move(analyzer));
            continue;
        }
        // From the postings, as DeadStats counts: lengths are sums of term frequencies, and a chunked
        // field's BM25 documents are the chunk entries of `docs`.
        const Bitmap members = text_entries(fi, docs);
        const auto lengths = text_lengths(fi);
        for (sparse::TermId t = 0; t < bm.num_terms(); ++t) d.doc_freq[t] += count_in_postings(bm, t, members);
        members.for_each([&](std::uint32_t local) {
            if (local >= lengths->size() || (*lengths)[local] == 0) return;
            ++d.docs_with_tokens;
            d.tokens += (*lengths)[local];
        });
    }
    if (analysed.empty()) return ok_status();
    Status st;
    std::vector<std::string> tokens;
    std::vector<sparse::TermId> ids;
    std::size_t cached_block = static_cast<std::size_t>(-1);
    std::vector<Document> block;  // the decoded documents of `cached_block`
    docs.for_each([&](std::uint32_t local) {
        if (!st || local >= ids_.size()) return;
        if (local / docs_per_block_ != cached_block) {
            cached_block = local / docs_per_block_;
            auto decoded = decode_block(cached_block);
            if (!decoded) {
                st = std::move(decoded).error();
                return;
            }
            block = std::move(decoded).value();
        }
        const Document& doc = block[local % docs_per_block_];
        // Counts one BM25 document (a document, or a chunk of a chunked field) of field `fi`.
        auto count = [&](std::size_t fi, text::Analyzer& analyzer, std::string_view title, std::string_view body) {
            tokens.clear();
            sparse::Bm25Index::document_tokens(analyzer, title, body, tokens);
            if (tokens.empty()) return;
            DeadTextStats& d = acc[fi];
            ++d.docs_with_tokens;
            d.tokens += tokens.size();
            ids.clear();
            for (const auto& t : tokens) ids.push_back(text_[fi]->find_term(t));
            std::sort(ids.begin(), ids.end());
            ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
            for (sparse::TermId id : ids) {
                if (id < d.doc_freq.size()) ++d.doc_freq[id];
            }
        };
        for (auto& [fi, analyzer] : analysed) {
            const FieldSpec& f = schema.fields[fi];
            if (f.chunking) {
                for (const std::string& chunk : field_chunks(f, doc)) count(fi, analyzer, {}, chunk);
                continue;
            }
            std::string_view title;
            std::string_view body;
            text_views(f, doc, title, body);
            count(fi, analyzer, title, body);
        }
    });
    return st;
}

Bitmap Segment::text_entries(std::size_t field, const Bitmap& docs) const {
    return chunk_offsets(field).empty() ? docs : chunk_entries(field, docs);
}

std::shared_ptr<const std::vector<std::uint32_t>> Segment::text_lengths(std::size_t field) const {
    const sparse::Bm25Index* bm = text_index(field);
    if (bm == nullptr) return nullptr;
    std::lock_guard lock(lengths_mu_);
    if (lengths_.size() <= field) lengths_.resize(field + 1);
    if (!lengths_[field]) {
        auto lengths = std::make_shared<std::vector<std::uint32_t>>(bm->num_docs(), 0);
        for (sparse::TermId t = 0; t < bm->num_terms(); ++t) {
            sparse::PostingCursor c = bm->postings().cursor(t);
            c.for_each_run_through(sparse::kTerminated - 1, [&](const sparse::DocIndex* docs, const float* tfs,
                                                                 std::uint32_t count, float) {
                for (std::uint32_t i = 0; i < count; ++i) (*lengths)[docs[i]] += static_cast<std::uint32_t>(tfs[i]);
            });
        }
        lengths_[field] = std::move(lengths);
    }
    return lengths_[field];
}

std::shared_ptr<DeadStats> DeadStats::next(std::shared_ptr<const Segment> seg, DeleteSet deleted,
                                           const std::shared_ptr<DeadStats>& previous) {
    if (deleted.empty()) return nullptr;
    auto out = std::make_shared<DeadStats>();
    out->seg_ = std::move(seg);
    out->deleted_ = std::move(deleted);
    if (previous) {
        // Called under the writer lock: never waits for a computation (base_mu_ is held briefly).
        std::lock_guard lock(previous->base_mu_);
        out->base_ = previous->usable_.load(std::memory_order_acquire) ? previous : previous->base_;
    }
    return out;
}

Status DeadStats::compute(const Schema& schema) {
    std::shared_ptr<DeadStats> base;
    {
        std::lock_guard b(base_mu_);
        base = base_;
    }
    const Bitmap delta = base ? deleted_.added_since(base->deleted_) : deleted_.flatten();
    const std::size_t n_fields = schema.fields.size();
    counts_.assign(n_fields, DeadTextCounts{});
    doc_freq_.assign(n_fields, {});
    entries_.assign(n_fields, std::nullopt);
    for (std::size_t fi = 0; fi < n_fields; ++fi) {
        const sparse::Bm25Index* bm = seg_->text_index(fi);
        if (bm == nullptr) continue;
        const Bitmap added = seg_->text_entries(fi, delta);
        const auto lengths = seg_->text_lengths(fi);
        DeadTextCounts c = base && fi < base->counts_.size() ? base->counts_[fi] : DeadTextCounts{};
        added.for_each([&](std::uint32_t e) {
            if (e >= lengths->size() || (*lengths)[e] == 0) return;
            ++c.docs_with_tokens;
            c.tokens += (*lengths)[e];
        });
        counts_[fi] = c;
        if (!base) continue;
        // The terms the base counted, carried on with the documents deleted since.
        std::unordered_map<sparse::TermId, std::uint32_t> carried;
        {
            std::lock_guard b(base->mu_);
            if (fi < base->doc_freq_.size() && base->doc_freq_[fi].size() <= kMaxCarriedTerms) carried = base->doc_freq_[fi];
        }
        for (auto& [id, n] : carried) n += count_in_postings(*bm, id, added);
        doc_freq_[fi] = std::move(carried);
    }
    return ok_status();
}

std::uint32_t DeadStats::count_locked(std::size_t field, sparse::TermId id) {
    auto& known = doc_freq_[field];
    if (const auto it = known.find(id); it != known.end()) return it->second;
    if (!entries_[field]) entries_[field] = seg_->text_entries(field, deleted_.merged());
    const std::uint32_t n = count_in_postings(*seg_->text_index(field), id, *entries_[field]);
    known.emplace(id, n);
    return n;
}

Status DeadStats::text_stats(const Schema& schema, std::size_t field, std::span<const sparse::TermId> ids,
                             DeadTextCounts& counts, std::span<std::uint32_t> doc_freq) {
    std::lock_guard lock(mu_);
    if (!done_) {
        status_ = compute(schema);
        done_ = true;
        std::lock_guard b(base_mu_);
        usable_.store(status_.ok(), std::memory_order_release);
        base_.reset();
    }
    if (!status_) return status_;
    counts = {};
    std::fill(doc_freq.begin(), doc_freq.end(), 0u);
    if (field >= counts_.size() || seg_->text_index(field) == nullptr) return ok_status();
    counts = counts_[field];
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] != sparse::kTerminated) doc_freq[i] = count_locked(field, ids[i]);
    }
    return ok_status();
}

}  // namespace quiver::engine
