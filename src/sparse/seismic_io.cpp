// Seismic save/open (format 'SEIS' v1, see docs/seismic.md) and small accessors.
#include <fmt/format.h>

#include "quiver/sparse/seismic.h"

namespace quiver::sparse {

SeismicIndex::SeismicIndex() : pool_(std::make_unique<SeismicSearcherPool>()) {}
SeismicIndex::SeismicIndex(SeismicIndex&&) noexcept = default;
SeismicIndex& SeismicIndex::operator=(SeismicIndex&&) noexcept = default;
SeismicIndex::~SeismicIndex() = default;

SeismicStats SeismicIndex::stats() const noexcept {
    SeismicStats s;
    s.docs = size();
    s.nnz = forward_.nnz();
    s.postings = postings_.size();
    s.blocks = block_min_.size();
    s.summary_entries = entry_code_.size();
    s.forward_bytes = forward_.bytes();
    s.postings_bytes = postings_.bytes() + block_post_.bytes() + list_blocks_.bytes();
    s.summary_bytes = block_min_.bytes() + block_step_.bytes() + list_comps_.bytes() + comp_term_.bytes() +
                      list_entries_.bytes() + comp_start_.bytes() + entry_block_.bytes() + entry_code_.bytes();
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
    QUIVER_ASSIGN_OR_RETURN(storage::FileWriter w,
                            storage::FileWriter::create(path, storage::fourcc("SEIS"), SeismicIndex::kFormatVersion));
    const SeismicBuildParams& p = ix.params_;
    QUIVER_TRY(w.write_pod<std::uint8_t>(static_cast<std::uint8_t>(p.pruning)));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.n_postings));
    QUIVER_TRY(w.write_pod<float>(p.max_fraction));
    QUIVER_TRY(w.write_pod<float>(p.centroid_fraction));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.min_cluster_size));
    QUIVER_TRY(w.write_pod<float>(p.summary_energy));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.doc_cut));
    QUIVER_TRY(w.write_pod<std::uint64_t>(p.seed));
    QUIVER_TRY(w.write_pod<std::uint32_t>(p.knn));
    QUIVER_TRY(write_vocabulary(w, ix.vocab_));
    QUIVER_TRY(ix.forward_.save(w));
    QUIVER_TRY(ix.ids_.save(w));
    QUIVER_TRY(write_buffer(w, ix.list_blocks_.span()));
    QUIVER_TRY(write_buffer(w, ix.block_post_.span()));
    QUIVER_TRY(write_buffer(w, ix.postings_.span()));
    QUIVER_TRY(write_buffer(w, ix.block_min_.span()));
    QUIVER_TRY(write_buffer(w, ix.block_step_.span()));
    QUIVER_TRY(write_buffer(w, ix.list_comps_.span()));
    QUIVER_TRY(write_buffer(w, ix.comp_term_.span()));
    QUIVER_TRY(write_buffer(w, ix.list_entries_.span()));
    QUIVER_TRY(write_buffer(w, ix.comp_start_.span()));
    QUIVER_TRY(write_buffer(w, ix.entry_block_.span()));
    QUIVER_TRY(write_buffer(w, ix.entry_code_.span()));
    QUIVER_TRY(write_buffer(w, ix.knn_.span()));
    return w.finish();
}

namespace {

// Offsets must start at 0, never decrease, and end at `total`.
Status check_offsets(storage::BinaryReader& r, const Buffer<std::uint64_t>& off, std::size_t expect_size,
                     std::size_t total, const char* what) {
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
    const std::size_t n_blocks = ix.block_min_.size();
    if (ix.block_step_.size() != n_blocks) return r.corrupt("seismic: summary arrays differ in length");
    QUIVER_TRY(check_offsets(r, ix.list_blocks_, dim + 1, n_blocks, "list block offsets"));
    QUIVER_TRY(check_offsets(r, ix.block_post_, n_blocks + 1, ix.postings_.size(), "block posting offsets"));
    if (ix.knn_.size() != n * ix.params_.knn) return r.corrupt("seismic: k-NN graph size does not match");
    for (std::uint32_t d : ix.knn_.span())
        if (d >= n && d != 0xFFFFFFFFu) return r.corrupt("seismic: k-NN graph names a missing document");
    for (std::uint32_t d : ix.postings_.span())
        if (d >= n) return r.corrupt(fmt::format("seismic: posting names document {} of {}", d, n));
    QUIVER_TRY(check_offsets(r, ix.list_comps_, dim + 1, ix.comp_term_.size(), "summary component offsets"));
    if (ix.entry_block_.size() != ix.entry_code_.size()) return r.corrupt("seismic: summary entries differ in length");
    QUIVER_TRY(check_offsets(r, ix.list_entries_, dim + 1, ix.entry_code_.size(), "summary entry offsets"));
    if (ix.comp_start_.size() != ix.comp_term_.size()) return r.corrupt("seismic: summary component arrays differ in length");
    for (std::size_t t = 0; t < dim; ++t) {
        const std::uint64_t nb = ix.list_blocks_[t + 1] - ix.list_blocks_[t];
        if (nb > 65535) return r.corrupt("seismic: a list has more than 65,535 blocks");
        const std::uint64_t c0 = ix.list_comps_[t], c1 = ix.list_comps_[t + 1];
        const std::uint64_t e0 = ix.list_entries_[t], n_entries = ix.list_entries_[t + 1] - e0;
        if ((c0 == c1) != (n_entries == 0)) return r.corrupt("seismic: summary components without entries");
        for (std::uint64_t c = c0; c < c1; ++c) {
            if (ix.comp_term_[c] >= dim || (c > c0 && ix.comp_term_[c] <= ix.comp_term_[c - 1]))
                return r.corrupt("seismic: summary components out of order or beyond the vocabulary");
            const std::uint64_t end = c + 1 < c1 ? ix.comp_start_[c + 1] : n_entries;
            if ((c == c0 && ix.comp_start_[c] != 0) || ix.comp_start_[c] >= end)
                return r.corrupt("seismic: summary component starts are not increasing");
        }
        for (std::uint64_t e = e0; e < e0 + n_entries; ++e)
            if (ix.entry_block_[e] >= nb) return r.corrupt("seismic: summary entry names a missing block");
    }
    return {};
}

Result<SeismicIndex> SeismicIo::open(const std::string& path) {
    auto file = std::make_unique<storage::MappedFile>();
    QUIVER_ASSIGN_OR_RETURN(*file, storage::MappedFile::open(path));
    QUIVER_ASSIGN_OR_RETURN(storage::BinaryReader r,
                            storage::open_payload(*file, storage::fourcc("SEIS"), SeismicIndex::kFormatVersion));
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
    QUIVER_ASSIGN_OR_RETURN(p.doc_cut, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(p.seed, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(p.knn, r.read_pod<std::uint32_t>());
    QUIVER_ASSIGN_OR_RETURN(ix.vocab_, read_vocabulary(r));
    QUIVER_ASSIGN_OR_RETURN(ix.forward_, ForwardIndex::load(r));
    QUIVER_ASSIGN_OR_RETURN(ix.ids_, DocIdTable::load(r, ix.forward_.size()));
    QUIVER_ASSIGN_OR_RETURN(ix.list_blocks_, read_buffer<std::uint64_t>(r, "list blocks"));
    QUIVER_ASSIGN_OR_RETURN(ix.block_post_, read_buffer<std::uint64_t>(r, "block postings"));
    QUIVER_ASSIGN_OR_RETURN(ix.postings_, read_buffer<std::uint32_t>(r, "postings"));
    QUIVER_ASSIGN_OR_RETURN(ix.block_min_, read_buffer<float>(r, "summary minimums"));
    QUIVER_ASSIGN_OR_RETURN(ix.block_step_, read_buffer<float>(r, "summary steps"));
    QUIVER_ASSIGN_OR_RETURN(ix.list_comps_, read_buffer<std::uint64_t>(r, "summary component offsets"));
    QUIVER_ASSIGN_OR_RETURN(ix.comp_term_, read_buffer<std::uint32_t>(r, "summary components"));
    QUIVER_ASSIGN_OR_RETURN(ix.list_entries_, read_buffer<std::uint64_t>(r, "summary entry offsets"));
    QUIVER_ASSIGN_OR_RETURN(ix.comp_start_, read_buffer<std::uint32_t>(r, "summary component starts"));
    QUIVER_ASSIGN_OR_RETURN(ix.entry_block_, read_buffer<std::uint16_t>(r, "summary entry blocks"));
    QUIVER_ASSIGN_OR_RETURN(ix.entry_code_, read_buffer<std::uint8_t>(r, "summary entry codes"));
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
