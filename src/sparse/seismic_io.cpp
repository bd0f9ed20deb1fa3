// Seismic save/open (format 'SEIS' v2, see docs/seismic.md) and small accessors.
#include <fmt/format.h>

#include <limits>

#include "quiver/sparse/seismic.h"

namespace quiver::sparse {

SeismicIndex::SeismicIndex() : pool_(std::make_unique<SeismicSearcherPool>()) {}
SeismicIndex::SeismicIndex(SeismicIndex&&) noexcept = default;
SeismicIndex& SeismicIndex::operator=(SeismicIndex&&) noexcept = default;
SeismicIndex::~SeismicIndex() = default;

SeismicStats SeismicIndex::stats() const noexcept {
    SeismicStats s;
    s.docs = forward_.size();
    s.tail_docs = tail_size();
    s.nnz = forward_.nnz();
    s.postings = postings_.size();
    s.blocks = block_scale_.size();
    s.summary_entries = sum_codes_.size();
    for (std::size_t b = 0; b < s.blocks; ++b) s.unsummarised_blocks += block_sum_[b] == block_sum_[b + 1] ? 1 : 0;
    s.forward_bytes = forward_.bytes();
    s.postings_bytes = postings_.bytes() + block_post_.bytes() + list_blocks_.bytes();
    s.summary_bytes = block_sum_.bytes() + block_scale_.bytes() + sum_terms16_.bytes() + sum_terms32_.bytes() +
                      sum_codes_.bytes();
    s.other_bytes = ids_.bytes();
    s.knn_bytes = knn_.bytes();
    s.raw_forward_bytes = s.nnz * 8 + (s.docs + 1) * 8;
    return s;
}

struct SeismicIo {
    static Status save(const SeismicIndex& ix, const std::string& path);
    static Result<SeismicIndex> open(const std::string& path);
    static Status check(const SeismicIndex& ix, storage::BinaryReader& r);
};

Status SeismicIo::save(const SeismicIndex& ix, const std::string& path) {
    if (ix.tail_size() > 0)
        return failed_precondition(fmt::format("seismic: '{}': the index has {} added rows in its tail; merge() before save()",
                                               path, ix.tail_size()));
    QUIVER_ASSIGN_OR_RETURN(storage::FileWriter w,
                            storage::FileWriter::create(path, storage::fourcc("SEIS"), SeismicIndex::kFormatVersion));
    const SeismicBuildParams& p = ix.params_;
    QUIVER_TRY(w.write_pod<std::uint8_t>(static_cast<std::uint8_t>(p.pruning)));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.n_postings));
    QUIVER_TRY(w.write_pod<float>(p.max_fraction));
    QUIVER_TRY(w.write_pod<float>(p.centroid_fraction));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.min_cluster_size));
    QUIVER_TRY(w.write_pod<float>(p.summary_energy));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.summary_max_entries));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.summary_min_postings));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.doc_cut));
    QUIVER_TRY(w.write_pod<std::uint64_t>(p.seed));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.knn));
    QUIVER_TRY(write_vocabulary(w, ix.vocab_));
    QUIVER_TRY(ix.forward_.save(w));
    QUIVER_TRY(ix.ids_.save(w));
    QUIVER_TRY(write_buffer(w, ix.list_blocks_.span()));
    QUIVER_TRY(write_buffer(w, ix.block_post_.span()));
    QUIVER_TRY(write_buffer(w, ix.postings_.span()));
    QUIVER_TRY(write_buffer(w, ix.block_sum_.span()));
    QUIVER_TRY(write_buffer(w, ix.block_scale_.span()));
    QUIVER_TRY(w.write_pod<std::uint8_t>(ix.sum_terms32_.empty() ? 0 : 1));
    if (ix.sum_terms32_.empty()) {
        QUIVER_TRY(write_buffer(w, ix.sum_terms16_.span()));
    } else {
        QUIVER_TRY(write_buffer(w, ix.sum_terms32_.span()));
    }
    QUIVER_TRY(write_buffer(w, ix.sum_codes_.span()));
    QUIVER_TRY(write_buffer(w, ix.knn_.span()));
    return w.finish();
}

namespace {

// Offsets must start at 0, never decrease, and end at `total`.
template <class T>
Status check_offsets(storage::BinaryReader& r, const Buffer<T>& off, std::size_t expect_size, std::size_t total,
                     const char* what) {
    if (off.size() != expect_size || off[0] != 0 || off[off.size() - 1] != total)
        return r.corrupt(fmt::format("seismic: {} do not match their data", what));
    for (std::size_t i = 1; i < off.size(); ++i)
        if (off[i] < off[i - 1]) return r.corrupt(fmt::format("seismic: {} are not monotone", what));
    return {};
}

}  // namespace

Status SeismicIo::check(const SeismicIndex& ix, storage::BinaryReader& r) {
    const std::size_t n = ix.forward_.size(), dim = ix.forward_.dim();
    if (dim != ix.vocab_.dim()) return r.corrupt("seismic: vocabulary and forward index disagree on dimension");
    const std::size_t n_blocks = ix.block_scale_.size();
    QUIVER_TRY(check_offsets(r, ix.list_blocks_, dim + 1, n_blocks, "list block offsets"));
    QUIVER_TRY(check_offsets(r, ix.block_post_, n_blocks + 1, ix.postings_.size(), "block posting offsets"));
    const std::size_t n_entries = ix.sum_codes_.size();
    QUIVER_TRY(check_offsets(r, ix.block_sum_, n_blocks + 1, n_entries, "block summary offsets"));
    if (ix.sum_terms16_.size() + ix.sum_terms32_.size() != n_entries)
        return r.corrupt("seismic: summary terms and codes differ in length");
    if (!ix.sum_terms32_.empty() && dim <= 65536) return r.corrupt("seismic: wide summary terms for a small vocabulary");
    if (!ix.sum_terms16_.empty() && dim > 65536) return r.corrupt("seismic: narrow summary terms for a large vocabulary");
    if (ix.knn_.size() != n * ix.params_.knn) return r.corrupt("seismic: k-NN graph size does not match");
    for (std::uint32_t d : ix.knn_.span())
        if (d >= n && d != 0xFFFFFFFFu) return r.corrupt("seismic: k-NN graph names a missing document");
    for (std::uint32_t d : ix.postings_.span())
        if (d >= n) return r.corrupt(fmt::format("seismic: posting names document {} of {}", d, n));
    for (float s : ix.block_scale_.span())
        if (!(s >= 0.0f && s <= std::numeric_limits<float>::max())) return r.corrupt("seismic: bad summary scale");
    for (std::size_t b = 0; b < n_blocks; ++b) {
        if (ix.block_post_[b] == ix.block_post_[b + 1]) return r.corrupt("seismic: empty block");
        const std::uint64_t e0 = ix.block_sum_[b], e1 = ix.block_sum_[b + 1];
        for (std::uint64_t e = e0; e < e1; ++e) {
            const std::uint32_t t = ix.sum_terms32_.empty() ? ix.sum_terms16_[e] : ix.sum_terms32_[e];
            const std::uint32_t prev = e == e0 ? 0 : (ix.sum_terms32_.empty() ? ix.sum_terms16_[e - 1] : ix.sum_terms32_[e - 1]);
            if (t >= dim || (e > e0 && t <= prev))
                return r.corrupt("seismic: summary terms out of order or beyond the vocabulary");
        }
    }
    return {};
}

Result<SeismicIndex> SeismicIo::open(const std::string& path) {
    auto file = std::make_unique<storage::MappedFile>();
    QUIVER_ASSIGN_OR_RETURN(*file, storage::MappedFile::open(path));
    std::uint32_t version = 0;
    QUIVER_ASSIGN_OR_RETURN(storage::BinaryReader r, storage::open_payload(*file, storage::fourcc("SEIS"),
                                                                           SeismicIndex::kFormatVersion, &version));
    if (version < 2)
        return failed_precondition(fmt::format(
            "'{}': Seismic format version {} (inverted summaries, before issue 15) is no longer read; this build "
            "reads version {}: rebuild the index with `quiver sparse-build --index-type seismic`",
            path, version, SeismicIndex::kFormatVersion));
    SeismicIndex ix;
    SeismicBuildParams& p = ix.params_;
    QUIVER_ASSIGN_OR_RETURN(std::uint8_t pruning, r.read_pod<std::uint8_t>());
    if (pruning > 1) return r.corrupt("seismic: unknown pruning strategy");
    p.pruning = static_cast<SeismicBuildParams::Pruning>(pruning);
    QUIVER_ASSIGN_OR_RETURN(p.n_postings, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(p.max_fraction, r.read_pod<float>());
    QUIVER_ASSIGN_OR_RETURN(p.centroid_fraction, r.read_pod<float>());
    QUIVER_ASSIGN_OR_RETURN(p.min_cluster_size, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(p.summary_energy, r.read_pod<float>());
    QUIVER_ASSIGN_OR_RETURN(p.summary_max_entries, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(p.summary_min_postings, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(p.doc_cut, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(p.seed, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(p.knn, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(ix.vocab_, read_vocabulary(r));
    QUIVER_ASSIGN_OR_RETURN(ix.forward_, ForwardIndex::load(r));
    QUIVER_ASSIGN_OR_RETURN(ix.ids_, DocIdTable::load(r, ix.forward_.size()));
    QUIVER_ASSIGN_OR_RETURN(ix.list_blocks_, read_buffer<std::uint32_t>(r, "list blocks"));
    QUIVER_ASSIGN_OR_RETURN(ix.block_post_, read_buffer<std::uint64_t>(r, "block postings"));
    QUIVER_ASSIGN_OR_RETURN(ix.postings_, read_buffer<std::uint32_t>(r, "postings"));
    QUIVER_ASSIGN_OR_RETURN(ix.block_sum_, read_buffer<std::uint64_t>(r, "block summary offsets"));
    QUIVER_ASSIGN_OR_RETURN(ix.block_scale_, read_buffer<float>(r, "summary scales"));
    QUIVER_ASSIGN_OR_RETURN(std::uint8_t wide, r.read_pod<std::uint8_t>());
    if (wide > 1) return r.corrupt("seismic: bad summary term width flag");
    if (wide == 1) {
        QUIVER_ASSIGN_OR_RETURN(ix.sum_terms32_, read_buffer<std::uint32_t>(r, "summary terms"));
    } else {
        QUIVER_ASSIGN_OR_RETURN(ix.sum_terms16_, read_buffer<std::uint16_t>(r, "summary terms"));
    }
    QUIVER_ASSIGN_OR_RETURN(ix.sum_codes_, read_buffer<std::uint8_t>(r, "summary codes"));
    QUIVER_ASSIGN_OR_RETURN(ix.knn_, read_buffer<std::uint32_t>(r, "k-NN graph"));
    if (r.remaining() != 0) return r.corrupt("seismic: trailing bytes after the last section");
    QUIVER_TRY(check(ix, r));
    for (std::size_t t = 0; t + 1 < ix.list_blocks_.size(); ++t)
        ix.max_blocks_per_list_ =
            std::max(ix.max_blocks_per_list_, static_cast<std::uint32_t>(ix.list_blocks_[t + 1] - ix.list_blocks_[t]));
    ix.file_ = std::move(file);
    return ix;
}

Status SeismicIndex::save(const std::string& path) const { return SeismicIo::save(*this, path); }
Result<SeismicIndex> SeismicIndex::open(const std::string& path) { return SeismicIo::open(path); }

}  // namespace quiver::sparse
