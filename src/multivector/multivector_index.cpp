// Multi-vector index: MUVERA FDEs in a dense index + exact MaxSim re-ranking, or exact brute force.
#include "quiver/multivector/multivector_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/index/flat_index.h"

namespace quiver::multivector {

std::string_view to_string(SearchMethod m) noexcept { return m == SearchMethod::kMuvera ? "muvera" : "exact"; }

Result<SearchMethod> parse_search_method(std::string_view s) {
    if (s == "muvera") return SearchMethod::kMuvera;
    if (s == "exact") return SearchMethod::kExact;
    return invalid_argument(fmt::format("unknown multi-vector index '{}' (expected muvera or exact)", s));
}

namespace {

// The footer of a quiver container: payload size, CRC-32, kind, version, magic.
struct FooterId {
    std::uint64_t bytes = 0;
    std::uint32_t crc = 0;
};

Result<FooterId> footer_id(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(storage::MappedFile f, storage::MappedFile::open(path));
    const auto b = f.bytes();
    if (b.size() < storage::kHeaderBytes + storage::kFooterBytes) {
        return data_loss(fmt::format("'{}': too short for a quiver file", path));
    }
    FooterId id;
    id.bytes = b.size();
    std::memcpy(&id.crc, b.data() + b.size() - storage::kFooterBytes + 8, sizeof(id.crc));
    return id;
}

std::string fde_path(const std::string& path) { return path + ".fde"; }

}  // namespace

Result<std::unique_ptr<MultiVectorIndex>> MultiVectorIndex::build(TokenStore store, std::vector<std::string> ids,
                                                                  const MultiVectorBuildParams& params,
                                                                  ProgressBar* progress) {
    if (!ids.empty() && ids.size() != store.size()) {
        return invalid_argument(fmt::format("{} ids for {} documents", ids.size(), store.size()));
    }
    if (store.size() > 0xFFFFFFFFu) return invalid_argument("a multi-vector index holds at most 2^32 - 1 documents");
    auto ix = std::unique_ptr<MultiVectorIndex>(new MultiVectorIndex());
    ix->method_ = params.method;
    ix->ids_ = std::move(ids);
    if (params.method == SearchMethod::kMuvera) {
        QUIVER_ASSIGN_OR_RETURN(Muvera mv, Muvera::create(store.dim(), params.muvera));
        if (params.center && store.total_tokens() > 0) {
            std::vector<double> sum(store.dim(), 0.0);
            std::vector<float> rows;
            for (std::size_t doc = 0; doc < store.size(); ++doc) {
                rows.resize(store.tokens(doc) * store.dim());
                store.decode(doc, rows.data());
                for (std::size_t i = 0; i < rows.size(); ++i) sum[i % store.dim()] += rows[i];
            }
            std::vector<float> mean(store.dim());
            for (std::size_t j = 0; j < mean.size(); ++j) mean[j] = static_cast<float>(sum[j] / static_cast<double>(store.total_tokens()));
            mv.set_center(mean.data());
        }
        const std::size_t fd = mv.fde_dim();
        if (params.fde_index == "blocks") {
            QUIVER_ASSIGN_OR_RETURN(FdeBlocks blocks, FdeBlocks::build(mv, store, params.hnsw.threads));
            ix->blocks_ = std::move(blocks);
            ix->fde_kind_ = params.fde_index;
            ix->muvera_ = std::move(mv);
            if (progress != nullptr) progress->add(store.size());
            ix->store_ = std::move(store);
            return ix;
        }
        if (params.fde_index == "hnsw") {
            index::HnswParams hp = params.hnsw;
            QUIVER_ASSIGN_OR_RETURN(ix->fde_, index::HnswIndex::create(fd, simd::Metric::kInnerProduct, hp));
        } else if (params.fde_index == "flat") {
            QUIVER_ASSIGN_OR_RETURN(ix->fde_, index::FlatIndex::create(fd, simd::Metric::kInnerProduct));
        } else {
            return invalid_argument(fmt::format("unknown FDE index '{}' (expected hnsw, flat or blocks)", params.fde_index));
        }
        ix->fde_kind_ = params.fde_index;
        // Encode and insert in chunks, so peak memory is one chunk of FDEs beside the index.
        ThreadPool pool(params.hnsw.threads);
        const std::size_t n = store.size();
        constexpr std::size_t kChunk = 4096;
        Matrix<float> fdes(std::min(n, kChunk), fd);
        std::vector<std::vector<float>> scratch(pool.size());
        for (std::size_t first = 0; first < n; first += kChunk) {
            const std::size_t count = std::min(kChunk, n - first);
            pool.parallel_for(count, [&](std::size_t i, std::size_t worker) {
                const std::size_t doc = first + i;
                std::vector<float>& rows = scratch[worker];
                rows.resize(store.tokens(doc) * store.dim());
                store.decode(doc, rows.data());
                mv.encode_document({rows.data(), store.tokens(doc), store.dim()}, fdes.row_ptr(i));
            }, 16);
            QUIVER_TRY(ix->fde_->add(MatrixView<float>{fdes.values.data(), count, fd},
                                     index::sequential_labels(count, first)));
            if (progress != nullptr) progress->add(count);
        }
        ix->muvera_ = std::move(mv);
    } else if (progress != nullptr) {
        progress->add(store.size());
    }
    ix->store_ = std::move(store);
    return ix;
}

Status MultiVectorIndex::save(const std::string& path) const {
    FooterId fid;
    if (fde_) {
        QUIVER_TRY(fde_->save(fde_path(path)));
        QUIVER_ASSIGN_OR_RETURN(fid, footer_id(fde_path(path)));
    }
    // Version 1 unless the FDEs are blocked (their sections follow the token store; version 3 is their
    // interleaved layout).
    const std::uint32_t version = blocks_ ? FdeBlocks::kLayoutVersion : 1;
    QUIVER_ASSIGN_OR_RETURN(storage::FileWriter w, storage::FileWriter::create(path, kMultiVectorFileKind, version));
    QUIVER_TRY(w.write_pod<std::uint32_t>(static_cast<std::uint32_t>(method_)));
    if (method_ == SearchMethod::kMuvera) {
        QUIVER_TRY(w.write_string(fde_kind_));
        QUIVER_TRY(w.write_pod<std::uint64_t>(fid.bytes));
        QUIVER_TRY(w.write_pod<std::uint32_t>(fid.crc));
        QUIVER_TRY(muvera_->write(w));
    }
    QUIVER_TRY(w.write_pod<std::uint64_t>(ids_.size()));
    for (const std::string& id : ids_) QUIVER_TRY(w.write_string(id));
    QUIVER_TRY(store_.write(w));
    if (blocks_) QUIVER_TRY(blocks_->write(w));
    return w.finish();
}

Result<std::unique_ptr<MultiVectorIndex>> MultiVectorIndex::open(const std::string& path,
                                                                 const TokenStoreOpenOptions& options) {
    QUIVER_ASSIGN_OR_RETURN(storage::MappedFile file, storage::MappedFile::open(path));
    auto mapping = std::make_shared<storage::MappedFile>(std::move(file));
    std::uint32_t version = 0;
    QUIVER_ASSIGN_OR_RETURN(storage::BinaryReader r,
                            storage::open_payload(*mapping, kMultiVectorFileKind, kFormatVersion, &version));
    auto ix = std::unique_ptr<MultiVectorIndex>(new MultiVectorIndex());
    QUIVER_ASSIGN_OR_RETURN(std::uint32_t method, r.read_pod<std::uint32_t>());
    if (method > 1) return r.corrupt(fmt::format("multi-vector index: unknown method {}", method));
    ix->method_ = static_cast<SearchMethod>(method);
    FooterId fid;
    if (ix->method_ == SearchMethod::kMuvera) {
        QUIVER_ASSIGN_OR_RETURN(ix->fde_kind_, r.read_string(16));
        const bool blocked = ix->fde_kind_ == "blocks" && version >= 2;
        if (ix->fde_kind_ != "hnsw" && ix->fde_kind_ != "flat" && !blocked) {
            return r.corrupt("multi-vector index: unknown FDE index kind");
        }
        QUIVER_ASSIGN_OR_RETURN(fid.bytes, r.read_pod<std::uint64_t>());
        QUIVER_ASSIGN_OR_RETURN(fid.crc, r.read_pod<std::uint32_t>());
        QUIVER_ASSIGN_OR_RETURN(Muvera mv, Muvera::read(r));
        ix->muvera_ = std::move(mv);
    }
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t nids, r.read_pod<std::uint64_t>());
    if (nids > r.remaining() / 8) return r.corrupt("multi-vector index: id count larger than the file");
    ix->ids_.reserve(nids);
    for (std::uint64_t i = 0; i < nids; ++i) {
        QUIVER_ASSIGN_OR_RETURN(std::string id, r.read_string(1u << 16));
        ix->ids_.push_back(std::move(id));
    }
    QUIVER_ASSIGN_OR_RETURN(ix->store_, TokenStore::read(r, options));
    if (ix->fde_kind_ == "blocks") {
        QUIVER_ASSIGN_OR_RETURN(FdeBlocks blocks,
                                FdeBlocks::read(r, *ix->muvera_, ix->store_.size(), options.in_memory, version));
        ix->blocks_ = std::move(blocks);
    }
    if (r.remaining() != 0) return r.corrupt("multi-vector index: trailing bytes after the token store");
    if (!ix->ids_.empty() && ix->ids_.size() != ix->store_.size()) {
        return r.corrupt(fmt::format("multi-vector index: {} ids for {} documents", ix->ids_.size(), ix->store_.size()));
    }
    if (ix->method_ == SearchMethod::kMuvera && ix->muvera_->dim() != ix->store_.dim()) {
        return r.corrupt("multi-vector index: MUVERA and token dimensions differ");
    }
    if (ix->method_ == SearchMethod::kMuvera && !ix->blocks_) {
        const std::string fp = fde_path(path);
        auto found = footer_id(fp);
        if (!found) {
            return data_loss(fmt::format("'{}': its FDE index '{}' cannot be read: {}", path, fp, found.error().message()));
        }
        if (found->bytes != fid.bytes || found->crc != fid.crc) {
            return data_loss(fmt::format("'{}': the FDE index '{}' is not the one this index was saved with "
                                         "(size {} / CRC {:08x}, expected {} / {:08x})",
                                         path, fp, found->bytes, found->crc, fid.bytes, fid.crc));
        }
        // verify: the pin above is the FDE file's footer CRC, which does not cover its large sections.
        QUIVER_ASSIGN_OR_RETURN(ix->fde_, index::open_index(fp, {.verify = true}));
        const auto info = ix->fde_->info();
        if (info.dim != ix->muvera_->fde_dim() || info.size != ix->store_.size() ||
            info.metric != simd::Metric::kInnerProduct) {
            return data_loss(fmt::format("'{}': the FDE index '{}' holds {} vectors of {} ({}), expected {} of {} (ip)",
                                         path, fp, info.size, info.dim, simd::to_string(info.metric), ix->store_.size(),
                                         ix->muvera_->fde_dim()));
        }
    }
    if (!options.in_memory) ix->mapping_ = std::move(mapping);
    return ix;
}

std::string MultiVectorIndex::id(std::uint32_t doc) const {
    return doc < ids_.size() ? ids_[doc] : std::to_string(doc);
}

Result<std::vector<Hit>> MultiVectorIndex::search(MatrixView<float> query, const MultiVectorSearchParams& params,
                                                  MultiVectorSearchStats* stats) const {
    if (query.rows > 0 && query.dim != dim()) {
        return invalid_argument(fmt::format("query token vectors have dimension {}, the index has {}", query.dim, dim()));
    }
    if (query.rows == 0 || params.k == 0 || size() == 0) return std::vector<Hit>{};
    MaxSimScratch scratch;
    if (method_ == SearchMethod::kExact) {
        if (stats != nullptr) stats->candidates = size();
        return exact_search(store_, query, params.k, scratch);
    }
    QUIVER_ASSIGN_OR_RETURN(std::vector<std::uint32_t> docs, candidates(query, params));
    if (stats != nullptr) stats->candidates = docs.size();
    return rerank(store_, query, docs, params.k, scratch);
}

Result<std::vector<std::uint32_t>> MultiVectorIndex::candidates(MatrixView<float> query,
                                                                const MultiVectorSearchParams& params) const {
    if (method_ != SearchMethod::kMuvera) return failed_precondition("an exact multi-vector index has no candidate stage");
    if (query.rows > 0 && query.dim != dim()) {
        return invalid_argument(fmt::format("query token vectors have dimension {}, the index has {}", query.dim, dim()));
    }
    if (query.rows == 0 || size() == 0) return std::vector<std::uint32_t>{};
    const std::size_t cand = std::max(params.k, params.candidates == 0 ? std::max<std::size_t>(10 * params.k, 100)
                                                                       : params.candidates);
    std::vector<float> fq(muvera_->fde_dim());
    muvera_->encode_query(query, fq.data());
    if (blocks_) {
        std::vector<float> scores;
        return blocks_->top(fq.data(), cand, scores);
    }
    QUIVER_ASSIGN_OR_RETURN(index::SearchResults found,
                            fde_->search({fq.data(), 1, fq.size()},
                                         {.k = cand, .ef = std::max(cand, params.ef), .threads = 1}));
    std::vector<std::uint32_t> docs;
    docs.reserve(found.count(0));
    for (std::size_t j = 0; j < found.count(0); ++j) docs.push_back(static_cast<std::uint32_t>(to_int(found.label(0, j))));
    return docs;
}

}  // namespace quiver::multivector
