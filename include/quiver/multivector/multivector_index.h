/// @file multivector_index.h
/// @brief A multi-vector (late-interaction) index: a TokenStore searched either exactly (MaxSim brute
/// force) or through MUVERA: document FDEs in a dense index (HNSW or flat, inner product) or in
/// partition blocks (fde_blocks.h: a flat scan of the query's non-zero blocks), the top `candidates`
/// by FDE inner product re-ranked by MaxSim over the stored tokens (float32 or int8, maxsim.h).
///
/// Files: `<path>` is container kind 'MVIX' (parameters, MUVERA draws, ids, token store, and for
/// blocked FDEs their sections, format version 3); an HNSW/flat MUVERA index also writes the dense FDE
/// index to `<path>.fde` (an ordinary FLAT/HNSW file) first, and the MVIX file records that file's
/// size and footer CRC, so a mismatched or replaced `.fde` is kDataLoss at open. Version 1 files
/// (no blocked FDEs) and version 2 files (blocked FDEs coordinate-major, re-laid out in memory at open)
/// are still read. Layout: docs/multivector.md.
///
/// Thread-safety: `search` is const and safe concurrently (scratch is per call); build/save are
/// single-caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/index/vector_index.h"
#include "quiver/multivector/fde_blocks.h"
#include "quiver/multivector/maxsim.h"
#include "quiver/multivector/muvera.h"
#include "quiver/multivector/token_store.h"

namespace quiver {
class ProgressBar;
}

namespace quiver::multivector {

enum class SearchMethod : std::uint8_t { kExact = 0, kMuvera = 1 };
std::string_view to_string(SearchMethod m) noexcept;
/// "exact" | "muvera".
Result<SearchMethod> parse_search_method(std::string_view s);

inline constexpr std::uint32_t kMultiVectorFileKind = storage::fourcc("MVIX");

struct MultiVectorBuildParams {
    SearchMethod method = SearchMethod::kMuvera;
    MuveraParams muvera;
    std::string fde_index = "hnsw";  ///< "hnsw" | "flat" | "blocks" (fde_blocks.h; needs d_final 0)
    index::HnswParams hnsw;          ///< when fde_index is hnsw (threads also used for encoding)
    bool center = true;              ///< SimHash hyperplanes through the mean document token
};

struct MultiVectorSearchParams {
    std::size_t k = 10;
    std::size_t candidates = 0;  ///< MUVERA: FDE candidates re-ranked; 0 = max(10 k, 100)
    std::size_t ef = 0;          ///< HNSW beam width; 0 = candidates (unused by flat and blocked FDEs)
};

/// Per-call counters of a search.
struct MultiVectorSearchStats {
    std::size_t candidates = 0;  ///< documents scored exactly
};

class MultiVectorIndex {
public:
    /// Written as 1 unless the FDEs are blocked (3, FdeBlocks::kLayoutVersion); 1, 2 and 3 are read.
    inline static constexpr std::uint32_t kFormatVersion = 3;

    /// Builds over `store` (ids[i] names document i; ids may be empty for row numbers).
    static Result<std::unique_ptr<MultiVectorIndex>> build(TokenStore store, std::vector<std::string> ids,
                                                           const MultiVectorBuildParams& params,
                                                           ProgressBar* progress = nullptr);
    static Result<std::unique_ptr<MultiVectorIndex>> open(const std::string& path,
                                                          const TokenStoreOpenOptions& options = {});
    /// Writes `<path>.fde` (MUVERA) and then `<path>`, each atomically.
    Status save(const std::string& path) const;

    /// Top-k documents by MaxSim. query.dim must equal dim() (kInvalidArgument otherwise); an empty
    /// query returns no hits.
    Result<std::vector<Hit>> search(MatrixView<float> query, const MultiVectorSearchParams& params,
                                    MultiVectorSearchStats* stats = nullptr) const;
    /// MUVERA's candidate stage alone: the document numbers `search` would re-rank (FDE order), for
    /// benchmarks that re-rank them with another store. kFailedPrecondition for exact indexes.
    Result<std::vector<std::uint32_t>> candidates(MatrixView<float> query, const MultiVectorSearchParams& params) const;

    SearchMethod method() const noexcept { return method_; }
    std::size_t size() const noexcept { return store_.size(); }
    std::size_t dim() const noexcept { return store_.dim(); }
    const TokenStore& store() const noexcept { return store_; }
    /// Present for MUVERA indexes.
    const Muvera* muvera() const noexcept { return muvera_ ? &*muvera_ : nullptr; }
    /// The dense FDE index (HNSW or flat; nullptr for exact and blocked indexes).
    const index::VectorIndex* fde_index() const noexcept { return fde_.get(); }
    /// The blocked FDEs (nullptr unless fde_kind() is "blocks").
    const FdeBlocks* fde_blocks() const noexcept { return blocks_ ? &*blocks_ : nullptr; }
    /// "hnsw" | "flat" | "blocks" for MUVERA indexes, "" for exact.
    const std::string& fde_kind() const noexcept { return fde_kind_; }
    const std::vector<std::string>& ids() const noexcept { return ids_; }
    /// The string id of document `doc` (its row number when the index has no ids).
    std::string id(std::uint32_t doc) const;
    /// Bytes held for the FDE index (0 for exact).
    std::size_t fde_bytes() const noexcept { return fde_ ? fde_->memory_bytes() : blocks_ ? blocks_->bytes() : 0; }

private:
    MultiVectorIndex() = default;

    SearchMethod method_ = SearchMethod::kExact;
    TokenStore store_;
    std::vector<std::string> ids_;
    std::optional<Muvera> muvera_;
    std::string fde_kind_;
    std::unique_ptr<index::VectorIndex> fde_;
    std::optional<FdeBlocks> blocks_;
    std::shared_ptr<storage::MappedFile> mapping_;  // the MVIX file, when opened (the store views it)
};

}  // namespace quiver::multivector
