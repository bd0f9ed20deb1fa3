/// @file code_index.h
/// @brief Indexes over compressed codes: a flat scan (nlist = 0) or an inverted file (IVF: coarse
/// k-means into `nlist` lists, `nprobe` lists scanned per query), with any codec (codec.h), and a final
/// float32 rescore of the best candidates.
///
/// Build. The first `add` trains: the coarse k-means (IVF) on up to 256 * nlist rows, then the codec on
/// up to `train_rows` rows (IVF codes hold the residual of a vector from its list's centroid, so the
/// codec is trained on residuals). Later adds encode with the trained parameters. Float32 vectors are
/// kept (`keep_vectors`) for the rescore; without them search returns code distances.
///
/// Search. Per query, the lists to probe (nearest centroids, squared L2 — for cosine data the same as
/// the largest inner product up to the centroid norms), then every code in them is estimated; the
/// best `rescore` candidates by estimate are re-scored in float32 and the best k returned. With a codec
/// that bounds its error (RaBitQ) the default rescore is by the bound: a candidate is re-scored only
/// when its lower bound beats the current k-th exact distance, so the depth adapts per query.
///
/// Removal sets a tombstone (the code stays in its list and is skipped); a replaced label is removed
/// and re-added. Labels must not be kNoLabel.
///
/// Thread-safety: `search` is const and may run concurrently; `add`, `remove` and `save` need exclusive
/// access. File: kind 'CIDX' (docs/formats.md); open() reads codes and ids into memory and maps the
/// float vectors, which are touched only by the rescore; with `CodeIndexOpenOptions::vectors_on_disk`
/// they are not mapped at all but read with pread, one candidate at a time, by the rescore.
#pragma once

#include <memory>
#include <unordered_map>

#include "quiver/index/codec.h"
#include "quiver/index/vector_index.h"
#include "quiver/storage/file_format.h"

namespace quiver::index {

inline constexpr std::uint32_t kCodeIndexFileKind = 0x58444943;  // "CIDX"

struct CodeIndexParams {
    CodecSpec codec;                ///< kNone: float32 codes (IVF-Flat, or an exact flat scan)
    std::size_t nlist = 0;          ///< 0 = flat scan over codes; else IVF lists
    std::size_t nprobe = 0;         ///< default lists probed per query; 0 = max(1, nlist / 32)
    std::size_t train_rows = 0;     ///< codec training sample; 0 = the codec's default
    std::uint64_t seed = 42;        ///< k-means, sampling and codec seed
    std::size_t threads = 0;        ///< build threads (0 = all cores)
    bool keep_vectors = true;       ///< keep float32 vectors for the rescore
};

/// Where an index's bytes are, per vector and in total.
struct CodeIndexFootprint {
    std::size_t vectors = 0;        ///< slots (live and removed)
    std::size_t code_bytes = 0;     ///< packed codes
    std::size_t id_bytes = 0;       ///< labels, tombstones, list entries, label map
    std::size_t parameter_bytes = 0;  ///< codec parameters and IVF centroids
    std::size_t float_bytes = 0;    ///< float32 vectors for the rescore (mapped after open)
    bool floats_mapped = false;     ///< float vectors are a read-only mapping (paged in by the rescore)
    bool floats_on_disk = false;    ///< float vectors stay in the file, read with pread by the rescore
    /// Resident bytes per vector without the float vectors: codes, ids, shared parameters.
    double resident_per_vector() const noexcept;
};

/// How open() treats the float32 vectors of a file that has them.
struct CodeIndexOpenOptions {
    /// Leave them in the file: the rescore reads each candidate's vector with pread (served by the page
    /// cache when warm), so resident memory holds only codes, lists, ids and codec parameters. A read
    /// that fails keeps the candidate's code estimate. The first add() loads them into memory.
    bool vectors_on_disk = false;
    /// Check the float vectors' section now instead of on first use (verify()).
    bool verify = false;
};

class CodeIndex final : public VectorIndex {
public:
    static Result<std::unique_ptr<CodeIndex>> create(std::size_t dim, Metric metric, const CodeIndexParams& params);
    static Result<std::unique_ptr<CodeIndex>> open(const std::string& path, const CodeIndexOpenOptions& options = {});
    ~CodeIndex() override;

    IndexInfo info() const override;  ///< kind "flat-codes" or "ivf"
    Status add(MatrixView<float> vectors, std::span<const Label> labels) override;
    Result<std::size_t> remove(std::span<const Label> labels) override;
    /// Uses params.k, threads, filter, nprobe (0 = the index default) and rescore (see SearchParams).
    Result<SearchResults> search(MatrixView<float> queries, const SearchParams& params) const override;
    Status save(const std::string& path) const override;
    std::size_t memory_bytes() const override;
    /// Opened files: checks the float vectors' section (once; every search, add, remove and save calls it).
    Status verify() const override;

    const CodeIndexParams& params() const noexcept { return params_; }
    const Codec* codec() const noexcept { return codec_.get(); }
    std::size_t nlist() const noexcept { return params_.nlist; }
    bool has_vectors() const noexcept { return vectors_ != nullptr || disk_fd_ >= 0; }
    /// Whether the float32 vectors stay on disk (opened with vectors_on_disk, until an add loads them).
    bool vectors_on_disk() const noexcept { return disk_fd_ >= 0; }
    CodeIndexFootprint footprint() const;

private:
    friend struct CodeIndexIo;
    struct List {
        std::vector<std::uint32_t> slots;  // slot of each code (IVF; the flat list's code i is slot i)
        std::vector<std::uint8_t> codes;   // packed: codec->packed_bytes(count) bytes
        std::size_t count = 0;
    };
    CodeIndex(std::size_t dim, Metric metric, const CodeIndexParams& params);
    bool trained() const noexcept { return codec_->trained() && (params_.nlist == 0 || !centroids_.empty()); }
    Status train(MatrixView<float> prepared);
    void append_codes(List& list, const std::uint32_t* slots, const std::uint8_t* codes, std::size_t n);
    /// The slot holding `label`, or -1.
    std::int64_t find_slot(std::uint64_t label) const;
    const float* vector(std::size_t slot) const noexcept { return vectors_ + slot * dim_; }
    /// The float32 distance from `q` to slot's vector (read into `buf`, dim floats, when on disk);
    /// `fallback` when it cannot be read.
    float exact_distance(const float* q, std::uint32_t slot, float* buf, float fallback) const noexcept;
    /// Reads every on-disk vector into owned_vectors_ (before a mutation).
    Status load_disk_vectors();
    bool live(std::uint32_t slot, const LabelFilter* filter) const noexcept {
        return removed_[slot] == 0 && (filter == nullptr || filter->allows(labels_[slot]));
    }
    void search_one(const float* query, const SearchParams& params, std::size_t nprobe, Label* out_labels,
                    float* out_dist) const;

    std::size_t dim_;
    Metric metric_;
    CodeIndexParams params_;
    simd::DistanceFn distance_;
    std::unique_ptr<Codec> codec_;
    std::vector<float> centroids_;        // nlist x dim (IVF)
    std::vector<List> lists_;             // 1 list when flat
    std::vector<Label> labels_;           // per slot
    std::vector<std::uint8_t> removed_;   // per slot
    // Label -> slot, built only once labels stop being the slot numbers 0..n-1 (sequential_).
    bool sequential_ = true;
    std::unordered_map<std::uint64_t, std::uint32_t> slot_of_;
    std::size_t live_ = 0;
    std::vector<float> owned_vectors_;    // slots x dim, when not mapped
    const float* vectors_ = nullptr;      // owned_vectors_ or the mapped file; null without vectors
    std::shared_ptr<storage::MappedFile> mapping_;
    std::unique_ptr<storage::DeferredCheck> deferred_;  // the vectors section's CRC (opened files)
    int disk_fd_ = -1;                    // vectors on disk: read with pread at disk_offset_ + slot * dim * 4
    std::uint64_t disk_offset_ = 0;
};

}  // namespace quiver::index
