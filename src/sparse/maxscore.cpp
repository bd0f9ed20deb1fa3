#include "quiver/sparse/maxscore.h"

#include <algorithm>

namespace quiver::sparse {
namespace {

// Upper bounds are products and sums of floats computed in a different order from the scores they
// bound; inflating them by a few ulps keeps pruning exact.
constexpr float kBoundSlack = 1.0f + 1e-5f;

struct DotContribution {
    float operator()(float query_weight, DocIndex, float weight) const noexcept { return query_weight * weight; }
    float bound(float unit) const noexcept { return unit; }
};

struct Bm25Contribution {
    const std::uint8_t* norms;
    const float* norm_inverse;
    float bound_scale;
    // Lucene's BM25Scorer.score: weight - weight / (1 + freq * normInverse).
    float operator()(float query_weight, DocIndex doc, float tf) const noexcept {
        return query_weight - query_weight / (1.0f + tf * norm_inverse[norms[doc]]);
    }
    // A stored unit bound u = x / (1 + x) for the bounds' table; with every table entry scaled by at
    // most s the unit score is at most s*x / (1 + s*x) (see Bm25Scorer).
    float bound(float unit) const noexcept {
        if (bound_scale <= 1.0f) return unit;
        // s*x / (1 + s*x) with x = u / (1 - u), as one division (u = 1 gives 1).
        const float su = bound_scale * unit;
        return su / (1.0f - unit + su);
    }
};

struct AllowAll {
    bool operator()(DocIndex) const noexcept { return true; }
};
struct AllowMask {
    const AllowedDocs* allowed;
    bool operator()(DocIndex doc) const noexcept { return allowed->allows(doc); }
};

// "a ranks before b": higher score, then smaller doc. A function object, so heap operations inline it.
struct Better {
    bool operator()(const ScoredDoc& a, const ScoredDoc& b) const noexcept {
        return a.score > b.score || (a.score == b.score && a.doc < b.doc);
    }
};
constexpr Better better{};

class TopKHeap {
public:
    explicit TopKHeap(std::size_t k) : k_(k) { heap_.reserve(k + 1); }
    bool full() const noexcept { return heap_.size() >= k_; }
    // A document must score strictly above this to enter once the heap is full.
    float threshold() const noexcept { return full() ? heap_.front().score : 0.0f; }
    void offer(DocIndex doc, float score) {
        if (score <= 0.0f) return;
        if (!full()) {
            heap_.push_back({doc, score});
            std::push_heap(heap_.begin(), heap_.end(), better);
        } else if (score > heap_.front().score) {
            std::pop_heap(heap_.begin(), heap_.end(), better);
            heap_.back() = {doc, score};
            std::push_heap(heap_.begin(), heap_.end(), better);
        }
    }
    std::vector<ScoredDoc> sorted() && {
        std::sort(heap_.begin(), heap_.end(), better);
        return std::move(heap_);
    }

private:
    std::size_t k_;
    std::vector<ScoredDoc> heap_;  // worst on top
};

struct ActiveTerm {
    PostingCursor cursor;
    float query_weight;
    float upper_bound;
};

template <class Contribution, class Allow>
std::vector<ScoredDoc> maxscore(const PostingStore& store, std::span<const QueryTerm> query, std::size_t k,
                                const Contribution& contrib, const Allow& allow, TopKStats* stats) {
    if (k == 0) return {};
    std::vector<ActiveTerm> terms;
    terms.reserve(query.size());
    for (const QueryTerm& q : query) {
        if (!(q.weight > 0.0f) || store.term_info(q.term).doc_freq == 0) continue;
        PostingCursor c = store.cursor(q.term);
        const float ub = q.weight * contrib.bound(c.max_score()) * kBoundSlack;
        terms.push_back({std::move(c), q.weight, ub});
    }
    std::sort(terms.begin(), terms.end(),
              [](const ActiveTerm& a, const ActiveTerm& b) { return a.upper_bound < b.upper_bound; });
    const std::size_t n = terms.size();
    std::vector<float> prefix(n);  // prefix[i] = sum of upper bounds of terms[0..i]
    float acc = 0.0f;
    for (std::size_t i = 0; i < n; ++i) prefix[i] = acc += terms[i].upper_bound;

    TopKHeap heap(k);
    std::size_t first_essential = 0;
    std::uint64_t scored = 0;
    std::uint64_t skipped = 0;
    for (;;) {
        const float threshold = heap.threshold();
        if (heap.full()) {
            // A document found only in lists [0, first_essential) scores at most prefix[...] <= threshold.
            while (first_essential < n && prefix[first_essential] * kBoundSlack <= threshold) ++first_essential;
        }
        if (first_essential >= n) break;
        DocIndex candidate = kTerminated;
        for (std::size_t i = first_essential; i < n; ++i) candidate = std::min(candidate, terms[i].cursor.doc());
        if (candidate == kTerminated) break;
        if (heap.full()) {
            // Block-max on the essential lists: over [candidate, end] only the lists positioned at the
            // candidate can contribute (the others' next document is beyond end), each at most its
            // current block's bound, and the non-essential lists at most their list bounds. When that
            // cannot beat the threshold, no document of the interval can: skip it whole.
            DocIndex end = kTerminated - 1;
            float bound = first_essential > 0 ? prefix[first_essential - 1] : 0.0f;
            for (std::size_t i = first_essential; i < n; ++i) {
                PostingCursor& c = terms[i].cursor;
                if (c.doc() != candidate) {
                    end = std::min(end, c.doc() - 1);
                    continue;
                }
                end = std::min(end, c.shallow_seek(candidate));
                bound += terms[i].query_weight * contrib.bound(c.block_max_score()) * kBoundSlack;
            }
            if (bound * kBoundSlack <= threshold) {
                ++skipped;
                for (std::size_t i = first_essential; i < n; ++i) {
                    if (terms[i].cursor.doc() <= end) terms[i].cursor.seek(end + 1);
                }
                continue;
            }
        }
        if (!allow(candidate)) {  // skipped inside the walk: never scored, never offered
            for (std::size_t i = first_essential; i < n; ++i) {
                if (terms[i].cursor.doc() == candidate) terms[i].cursor.next();
            }
            continue;
        }

        float score = 0.0f;
        for (std::size_t i = first_essential; i < n; ++i) {
            PostingCursor& c = terms[i].cursor;
            if (c.doc() == candidate) {
                score += contrib(terms[i].query_weight, candidate, c.weight());
                c.next();
            }
        }
        ++scored;
        bool pruned = false;
        for (std::size_t j = first_essential; j-- > 0;) {
            if (heap.full() && score + prefix[j] * kBoundSlack <= threshold) {
                pruned = true;
                break;
            }
            PostingCursor& c = terms[j].cursor;
            if (c.shallow_seek(candidate) == kTerminated) continue;
            const float block_bound = terms[j].query_weight * contrib.bound(c.block_max_score()) * kBoundSlack;
            const float rest = j > 0 ? prefix[j - 1] : 0.0f;
            if (heap.full() && score + (rest + block_bound) * kBoundSlack <= threshold) {
                ++skipped;
                pruned = true;
                break;
            }
            if (c.seek(candidate) == candidate) score += contrib(terms[j].query_weight, candidate, c.weight());
        }
        if (!pruned) heap.offer(candidate, score);
    }
    if (stats != nullptr) {
        stats->docs_scored += scored;
        stats->blocks_skipped += skipped;
    }
    return std::move(heap).sorted();
}

template <class Contribution>
std::vector<ScoredDoc> exhaustive(const PostingStore& store, std::span<const QueryTerm> query, std::size_t k,
                                  const Contribution& contrib, const AllowedDocs* allowed) {
    std::vector<float> acc(store.num_docs(), 0.0f);
    for (const QueryTerm& q : query) {
        if (!(q.weight > 0.0f)) continue;
        PostingCursor c = store.cursor(q.term);
        for (DocIndex d = c.doc(); d != kTerminated; d = c.next()) acc[d] += contrib(q.weight, d, c.weight());
    }
    TopKHeap heap(k);
    if (k == 0) return {};
    for (DocIndex d = 0; d < acc.size(); ++d) {
        if (allowed == nullptr || allowed->allows(d)) heap.offer(d, acc[d]);
    }
    return std::move(heap).sorted();
}

template <class Contribution>
std::vector<ScoredDoc> dispatch_allow(const PostingStore& store, std::span<const QueryTerm> query, std::size_t k,
                                      const Contribution& contrib, TopKStats* stats, const AllowedDocs* allowed) {
    if (allowed != nullptr && allowed->restricts()) return maxscore(store, query, k, contrib, AllowMask{allowed}, stats);
    return maxscore(store, query, k, contrib, AllowAll{}, stats);
}

Bm25Contribution bm25_contribution(const Bm25Scorer& s) {
    return {s.norms.data(), s.norm_inverse.data(), s.bound_scale};
}

}  // namespace

std::vector<ScoredDoc> search_top_k(const PostingStore& store, std::span<const QueryTerm> query, std::size_t k,
                                    const Scorer& scorer, TopKStats* stats, const AllowedDocs* allowed) {
    if (const auto* bm25 = std::get_if<Bm25Scorer>(&scorer)) {
        return dispatch_allow(store, query, k, bm25_contribution(*bm25), stats, allowed);
    }
    return dispatch_allow(store, query, k, DotContribution{}, stats, allowed);
}

std::vector<ScoredDoc> search_exhaustive(const PostingStore& store, std::span<const QueryTerm> query,
                                         std::size_t k, const Scorer& scorer, const AllowedDocs* allowed) {
    if (const auto* bm25 = std::get_if<Bm25Scorer>(&scorer)) {
        return exhaustive(store, query, k, bm25_contribution(*bm25), allowed);
    }
    return exhaustive(store, query, k, DotContribution{}, allowed);
}

}  // namespace quiver::sparse
