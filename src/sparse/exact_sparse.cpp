#include "quiver/sparse/exact_sparse.h"

#include <fmt/format.h>

#include <algorithm>

namespace quiver::sparse {

Result<ExactSparseIndex> ExactSparseIndex::build(const SparseCollection& c, WeightType weights) {
    if (weights != WeightType::kFloat32 && weights != WeightType::kQuantized8)
        return invalid_argument("exact sparse index: weights must be float32 or quantized8");
    if (c.size() >= kTerminated) return invalid_argument("exact sparse index: too many documents");
    PostingsBuilder b(weights);
    b.set_num_docs(static_cast<std::uint32_t>(c.size()));
    for (std::size_t d = 0; d < c.size(); ++d) {
        const SparseVectorView v = c.row(d);
        b.add_document(static_cast<DocIndex>(d), v.terms, v.weights);
    }
    ExactSparseIndex ix;
    QUIVER_ASSIGN_OR_RETURN(ix.store_, b.build());
    ix.vocab_ = c.vocab;
    ix.ids_ = DocIdTable(c.ids);
    return ix;
}

std::size_t ExactSparseIndex::bytes() const noexcept {
    return store_.data_bytes() + store_.blocks().size_bytes() + store_.num_terms() * sizeof(TermInfo) +
           ids_.bytes();
}

std::vector<SparseHit> ExactSparseIndex::search(SparseVectorView query, std::size_t k, TopKStats* stats,
                                                const AllowedDocs* allowed, const FilterWalkParams& walk,
                                                float min_score) const {
    std::vector<QueryTerm> q;
    q.reserve(query.size());
    for (std::size_t j = 0; j < query.size(); ++j) q.push_back({query.terms[j], query.weights[j]});
    const std::vector<ScoredDoc> top = search_top_k(store_, q, k, DotProductScorer{}, stats, allowed, walk, min_score);
    std::vector<SparseHit> out;
    out.reserve(top.size());
    for (const ScoredDoc& s : top) out.push_back({s.doc, s.score});
    return out;
}

Status ExactSparseIndex::save(const std::string& path) const {
    QUIVER_ASSIGN_OR_RETURN(storage::FileWriter w, storage::FileWriter::create(path, storage::fourcc("SPEX"), kFormatVersion));
    QUIVER_TRY(write_vocabulary(w, vocab_));
    QUIVER_TRY(w.write_pod<std::uint64_t>(ids_.size()));
    QUIVER_TRY(ids_.save(w));
    QUIVER_TRY(w.align(64));
    QUIVER_TRY(store_.write(w));
    return w.finish();
}

Result<ExactSparseIndex> ExactSparseIndex::open(const std::string& path) {
    auto file = std::make_shared<storage::MappedFile>();
    QUIVER_ASSIGN_OR_RETURN(*file, storage::MappedFile::open(path));
    QUIVER_ASSIGN_OR_RETURN(storage::BinaryReader r, storage::open_payload(*file, storage::fourcc("SPEX"), kFormatVersion));
    ExactSparseIndex ix;
    QUIVER_ASSIGN_OR_RETURN(ix.vocab_, read_vocabulary(r));
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t n, r.read_pod<std::uint64_t>());
    if (n >= kTerminated) return r.corrupt("exact sparse index: bad document count");
    QUIVER_ASSIGN_OR_RETURN(ix.ids_, DocIdTable::load(r, static_cast<std::size_t>(n)));
    QUIVER_TRY(r.align(64));
    QUIVER_ASSIGN_OR_RETURN(ix.store_, PostingStore::read(r, file));
    if (ix.store_.num_docs() != n) return r.corrupt("exact sparse index: posting store and id table disagree");
    if (ix.store_.num_terms() > ix.vocab_.dim()) return r.corrupt("exact sparse index: terms beyond the vocabulary");
    if (r.remaining() != 0) return r.corrupt("exact sparse index: trailing bytes after the last section");
    ix.file_ = std::move(file);
    return ix;
}

std::vector<SparseHit> brute_force_top_k(const SparseCollection& c, SparseVectorView query, std::size_t k) {
    std::vector<SparseHit> all;
    for (std::size_t d = 0; d < c.size(); ++d) {
        const float s = dot(c.row(d), query);
        if (s > 0.0f) all.push_back({static_cast<std::uint32_t>(d), s});
    }
    auto better = [](const SparseHit& a, const SparseHit& b) {
        return a.score != b.score ? a.score > b.score : a.doc < b.doc;
    };
    const std::size_t n = std::min(k, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(), better);
    all.resize(n);
    return all;
}

}  // namespace quiver::sparse
