// Seismic query processing (seismic.h section "Query").
#include <algorithm>
#include <limits>
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
      visited_(index.forward_.size(), 0),
      block_score_(index.max_blocks_per_list_, 0.0f),
      order_(index.max_blocks_per_list_, 0) {}

// Block b's summary score: scale x sum of code x query weight over its entries; +infinity for a block
// without a summary (a short list's only block), which is never skipped.
template <class TermT>
void SeismicSearcher::score_blocks(const TermT* terms, std::uint64_t b0, std::size_t nb) {
    const SeismicIndex& ix = *index_;
    const std::uint64_t* bs = ix.block_sum_.data() + b0;
    const float* scale = ix.block_scale_.data() + b0;
    const std::uint8_t* codes = ix.sum_codes_.data();
    const float* q = qdense_.data();
    for (std::size_t b = 0; b < nb; ++b) {
        const std::uint64_t e0 = bs[b], e1 = bs[b + 1];
        if (e0 == e1) {
            block_score_[b] = std::numeric_limits<float>::infinity();
            continue;
        }
        float s0 = 0, s1 = 0;
        std::uint64_t e = e0;
        for (; e + 2 <= e1; e += 2) {
            s0 += q[terms[e]] * static_cast<float>(codes[e]);
            s1 += q[terms[e + 1]] * static_cast<float>(codes[e + 1]);
        }
        if (e < e1) s0 += q[terms[e]] * static_cast<float>(codes[e]);
        block_score_[b] = (s0 + s1) * scale[b];
    }
}

void SeismicSearcher::score_summaries(std::uint32_t list) {
    const SeismicIndex& ix = *index_;
    const std::uint64_t b0 = ix.list_blocks_[list];
    const std::size_t nb = ix.list_blocks_[list + 1] - b0;
    if (ix.sum_terms32_.empty()) {
        score_blocks(ix.sum_terms16_.data(), b0, nb);
    } else {
        score_blocks(ix.sum_terms32_.data(), b0, nb);
    }
}

void SeismicSearcher::push(std::vector<SparseHit>& heap, std::size_t k, SparseHit h) {
    if (heap.size() < k) {
        heap.push_back(h);
        std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(h, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = h;
        std::push_heap(heap.begin(), heap.end(), better);
    }
}

// Scores `doc` exactly unless already visited by this query, and keeps it if it is among the k best.
void SeismicSearcher::offer(std::vector<SparseHit>& heap, std::size_t k, std::uint32_t doc, std::size_t& n_eval) {
    if (visited_[doc] == stamp_) return;
    visited_[doc] = stamp_;
    ++n_eval;
    push(heap, k, SparseHit{doc, index_->forward_.score(doc, qdense_.data())});
}

// The exact tail: term at a time over every query term, then each touched row into the heap.
void SeismicSearcher::score_tail(SparseVectorView query, std::vector<SparseHit>& heap, std::size_t k,
                                 std::size_t& n_eval) {
    const SeismicTail& tail = *index_->tail_;
    const std::size_t n = tail.ids.size();
    if (tail_acc_.size() < n) {
        tail_acc_.resize(n, 0.0f);
        tail_stamp_.resize(n, 0);
    }
    tail_touched_.clear();
    for (std::size_t j = 0; j < query.size(); ++j) {
        const std::uint32_t t = query.terms[j];
        if (t >= tail.lists.size()) continue;
        const float qw = query.weights[j];
        for (const auto& [row, w] : tail.lists[t]) {
            if (tail_stamp_[row] != stamp_) {
                tail_stamp_[row] = stamp_;
                tail_acc_[row] = 0.0f;
                tail_touched_.push_back(row);
            }
            tail_acc_[row] += qw * w;
        }
    }
    const auto base = static_cast<std::uint32_t>(index_->forward_.size());
    for (std::uint32_t row : tail_touched_) push(heap, k, SparseHit{base + row, tail_acc_[row]});
    n_eval += tail_touched_.size();
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
        std::fill(tail_stamp_.begin(), tail_stamp_.end(), 0u);
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
        score_summaries(list);
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
    if (ix.tail_ != nullptr && !ix.tail_->ids.empty()) score_tail(query, heap, params.k, n_eval);
    const std::uint32_t kappa = ix.params_.knn;
    if (params.n_knn > 0 && kappa > 0) {
        const std::uint32_t n = std::min(params.n_knn, kappa);
        std::vector<std::uint32_t> seeds;
        seeds.reserve(heap.size());
        for (const SparseHit& h : heap)
            if (h.doc < ix.forward_.size()) seeds.push_back(h.doc);  // tail rows have no graph
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
