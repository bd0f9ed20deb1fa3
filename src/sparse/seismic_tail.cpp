// Incremental add to a Seismic index: the exact in-memory tail and merge (seismic.h, SeismicIndex::add).
#include <fmt/format.h>

#include <cmath>

#include "quiver/sparse/seismic.h"

namespace quiver::sparse {

std::size_t SeismicIndex::tail_size() const noexcept { return tail_ == nullptr ? 0 : tail_->ids.size(); }

std::string_view SeismicIndex::doc_id(std::uint32_t doc) const noexcept {
    const std::size_t base = forward_.size();
    return doc < base ? ids_[doc] : std::string_view(tail_->ids[doc - base]);
}

Status SeismicIndex::add(std::string id, SparseVectorView v) {
    if (v.terms.size() != v.weights.size())
        return invalid_argument(fmt::format("seismic add: document '{}' has {} terms and {} weights", id, v.terms.size(),
                                            v.weights.size()));
    for (std::size_t j = 0; j < v.size(); ++j) {
        if (v.terms[j] >= dim())
            return invalid_argument(fmt::format("seismic add: document '{}': term id {} is beyond the vocabulary ({} ids)",
                                                id, v.terms[j], dim()));
        if (j > 0 && v.terms[j] <= v.terms[j - 1])
            return invalid_argument(fmt::format("seismic add: document '{}': terms are not strictly ascending", id));
        if (!(std::isfinite(v.weights[j]) && v.weights[j] > 0.0f))
            return invalid_argument(fmt::format("seismic add: document '{}': weight of term {} is not finite and > 0",
                                                id, v.terms[j]));
    }
    if (size() >= (1ull << 32) - 2) return invalid_argument("seismic add: at most 2^32 - 2 documents");
    if (tail_ == nullptr) {
        tail_ = std::make_unique<SeismicTail>();
        tail_->lists.resize(dim());
    }
    SeismicTail& t = *tail_;
    const auto row = static_cast<std::uint32_t>(t.ids.size());
    for (std::size_t j = 0; j < v.size(); ++j) t.lists[v.terms[j]].emplace_back(row, v.weights[j]);
    t.terms.insert(t.terms.end(), v.terms.begin(), v.terms.end());
    t.weights.insert(t.weights.end(), v.weights.begin(), v.weights.end());
    t.offsets.push_back(t.terms.size());
    t.ids.push_back(std::move(id));
    return {};
}

Status SeismicIndex::merge() {
    if (tail_size() == 0) return {};
    SparseCollection c;
    c.vocab = vocab_;
    const std::size_t base = forward_.size();
    c.offsets.reserve(base + tail_size() + 1);
    c.ids.reserve(base + tail_size());
    c.terms.reserve(forward_.nnz() + tail_->terms.size());
    c.weights.reserve(c.terms.capacity());
    SparseVector row;
    for (std::uint32_t d = 0; d < base; ++d) {
        row.terms.clear();
        row.weights.clear();
        forward_.for_each(d, [&](std::uint32_t term, float w) {
            row.terms.push_back(term);
            row.weights.push_back(w);
        });
        c.append_canonical(std::string(ids_[d]), row.view());
    }
    const SeismicTail& t = *tail_;
    for (std::size_t r = 0; r < t.ids.size(); ++r) {
        const std::size_t b = t.offsets[r], e = t.offsets[r + 1];
        c.append_canonical(t.ids[r], SparseVectorView{std::span<const TermId>(t.terms.data() + b, e - b),
                                                      std::span<const float>(t.weights.data() + b, e - b)});
    }
    QUIVER_ASSIGN_OR_RETURN(SeismicIndex fresh, build(c, params_));
    *this = std::move(fresh);  // a fresh searcher pool too: pooled searchers were sized for the old rows
    return {};
}

}  // namespace quiver::sparse
