// Seismic query processing (seismic.h section "Query").
#include <algorithm>
#include <memory>
#include <mutex>
#include <numeric>

#include "quiver/sparse/seismic.h"

namespace quiver::sparse {

namespace {

constexpr std::uint32_t kNoNeighbor = 0xFFFFFFFFu;

// Orders hits best first (higher score, then lower row). As a heap comparator it keeps the k-th best
// hit at the root.
bool better(const SparseHit& a, const SparseHit& b) noexcept {
    return a.score != b.score ? a.score > b.score : a.doc < b.doc;
}

}  // namespace

SeismicSearcher::SeismicSearcher(const SeismicIndex& index)
    : index_(&index),
      qdense_(index.dim(), 0.0f),
      visited_(index.size(), 0),
      acc_code_(index.max_blocks_per_list_, 0.0f),
      acc_q_(index.max_blocks_per_list_, 0.0f),
      block_score_(index.max_blocks_per_list_, 0.0f),
      order_(index.max_blocks_per_list_, 0) {}

void SeismicSearcher::score_summaries(std::uint32_t list, SparseVectorView query) {
    const SeismicIndex& ix = *index_;
    const std::uint64_t b0 = ix.list_blocks_[list];
    const std::size_t nb = ix.list_blocks_[list + 1] - b0;
    std::fill_n(acc_code_.begin(), nb, 0.0f);
    std::fill_n(acc_q_.begin(), nb, 0.0f);
    const std::uint32_t* ct = ix.comp_term_.data();
    const std::uint64_t c1 = ix.list_comps_[list + 1];
    const std::uint64_t c0 = ix.list_comps_[list];
    std::uint64_t pos = c0;
    const std::uint64_t base = ix.list_entries_[list], list_end = ix.list_entries_[list + 1];
    const std::uint32_t* cs = ix.comp_start_.data();
    const std::uint16_t* eb = ix.entry_block_.data();
    const std::uint8_t* ec = ix.entry_code_.data();
    auto add_component = [&](std::uint64_t c, float qw) {
        const std::uint64_t e1 = c + 1 < c1 ? base + cs[c + 1] : list_end;
        for (std::uint64_t e = base + cs[c]; e < e1; ++e) {
            acc_code_[eb[e]] += qw * static_cast<float>(ec[e]);
            acc_q_[eb[e]] += qw;
        }
    };
    if (c1 - c0 <= 8 * query.size()) {
        // Few components: one linear pass, looking each up in the dense query (no unpredictable search).
        for (std::uint64_t c = c0; c < c1; ++c) {
            const float qw = qdense_[ct[c]];
            if (qw != 0.0f) add_component(c, qw);
        }
    } else {
        for (std::size_t j = 0; j < query.size() && pos < c1; ++j) {
            const std::uint32_t qt = query.terms[j];
            pos = static_cast<std::uint64_t>(std::lower_bound(ct + pos, ct + c1, qt) - ct);
            if (pos < c1 && ct[pos] == qt) add_component(pos, query.weights[j]);
        }
    }
    const float* mn = ix.block_min_.data() + b0;
    const float* st = ix.block_step_.data() + b0;
    for (std::size_t b = 0; b < nb; ++b) block_score_[b] = st[b] * acc_code_[b] + mn[b] * acc_q_[b];
}

// Scores `doc` exactly unless already visited by this query, and keeps it if it is among the k best.
void SeismicSearcher::offer(std::vector<SparseHit>& heap, std::size_t k, std::uint32_t doc, std::size_t& n_eval) {
    if (visited_[doc] == stamp_) return;
    visited_[doc] = stamp_;
    const SparseHit h{doc, index_->forward_.score(doc, qdense_.data())};
    ++n_eval;
    if (heap.size() < k) {
        heap.push_back(h);
        std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(h, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = h;
        std::push_heap(heap.begin(), heap.end(), better);
    }
}

std::vector<SparseHit> SeismicSearcher::search(SparseVectorView query, const SeismicSearchParams& params,
                                               std::size_t* evaluated) {
    std::vector<SparseHit> heap;
    std::size_t n_eval = 0;
    const SeismicIndex& ix = *index_;
    const std::uint32_t dim = ix.dim();
    if (query.empty() || params.k == 0 || ix.size() == 0) {
        if (evaluated) *evaluated = 0;
        return heap;
    }
    if (++stamp_ == 0) {
        std::fill(visited_.begin(), visited_.end(), 0u);
        stamp_ = 1;
    }
    std::vector<std::pair<float, std::uint32_t>> sel;
    sel.reserve(query.size());
    for (std::size_t j = 0; j < query.size(); ++j) {
        const std::uint32_t t = query.terms[j];
        if (t >= dim) continue;  // unknown to this index: matches nothing
        qdense_[t] = query.weights[j];
        sel.emplace_back(query.weights[j], t);
    }
    const std::size_t cut = std::min<std::size_t>(params.query_cut, sel.size());
    std::partial_sort(sel.begin(), sel.begin() + static_cast<std::ptrdiff_t>(cut), sel.end(),
                      [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    heap.reserve(params.k + 1);
    const ForwardIndex& fwd = ix.forward_;
    const std::uint32_t* postings = ix.postings_.data();
    for (std::size_t si = 0; si < cut; ++si) {
        const std::uint32_t list = sel[si].second;
        const std::uint64_t b0 = ix.list_blocks_[list];
        const std::size_t nb = ix.list_blocks_[list + 1] - b0;
        if (nb == 0) continue;
        score_summaries(list, query);
        std::iota(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(nb), 0u);
        const bool sorted = params.first_sorted && si == 0;
        if (sorted)
            std::sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(nb),
                      [&](std::uint32_t a, std::uint32_t b) { return block_score_[a] > block_score_[b]; });
        for (std::size_t oi = 0; oi < nb; ++oi) {
            const std::uint32_t b = order_[oi];
            if (heap.size() == params.k && block_score_[b] < params.heap_factor * heap.front().score) {
                if (sorted) break;
                continue;
            }
            const std::uint64_t p0 = ix.block_post_[b0 + b], p1 = ix.block_post_[b0 + b + 1];
            for (std::uint64_t p = p0; p < p1; ++p)
                if (visited_[postings[p]] != stamp_) fwd.prefetch(postings[p]);
            for (std::uint64_t p = p0; p < p1; ++p) offer(heap, params.k, postings[p], n_eval);
        }
    }
    const std::uint32_t kappa = ix.params_.knn;
    if (params.n_knn > 0 && kappa > 0) {
        const std::uint32_t n = std::min(params.n_knn, kappa);
        std::vector<std::uint32_t> seeds;
        seeds.reserve(heap.size());
        for (const SparseHit& h : heap) seeds.push_back(h.doc);
        for (std::uint32_t d : seeds) {
            const std::uint32_t* nb = ix.knn_.data() + static_cast<std::size_t>(d) * kappa;
            for (std::uint32_t j = 0; j < n && nb[j] != kNoNeighbor; ++j) offer(heap, params.k, nb[j], n_eval);
        }
    }
    for (std::size_t j = 0; j < query.size(); ++j)
        if (query.terms[j] < dim) qdense_[query.terms[j]] = 0.0f;
    std::sort(heap.begin(), heap.end(), better);
    if (evaluated) *evaluated = n_eval;
    return heap;
}

std::vector<SparseHit> SeismicIndex::search(SparseVectorView query, const SeismicSearchParams& params) const {
    std::unique_ptr<SeismicSearcher> s;
    {
        std::lock_guard<std::mutex> lock(pool_->mu);
        if (!pool_->free.empty()) {
            s = std::move(pool_->free.back());
            pool_->free.pop_back();
        }
    }
    if (s == nullptr) {
        s = std::make_unique<SeismicSearcher>(*this);
    } else {
        s->index_ = this;
    }
    std::vector<SparseHit> hits = s->search(query, params);
    std::lock_guard<std::mutex> lock(pool_->mu);
    pool_->free.push_back(std::move(s));
    return hits;
}

std::size_t SeismicIndex::pooled_searchers() const noexcept {
    std::lock_guard<std::mutex> lock(pool_->mu);
    return pool_->free.size();
}


}  // namespace quiver::sparse
