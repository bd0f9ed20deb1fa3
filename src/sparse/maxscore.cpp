#include "quiver/sparse/maxscore.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

namespace quiver::sparse {
namespace {

// Upper bounds are products and sums of floats computed in a different order from the scores they
// bound; inflating them by a few ulps keeps pruning exact.
constexpr float kBoundSlack = 1.0f + 1e-5f;

// Every walk gives a document the float the exhaustive reference sums: its terms' contributions added
// in query order. The walks compare partial sums taken in other orders (and bounds) with the k-th
// score; two orders of n non-negative summands differ by at most 2(n - 1) units of 2^-24 of their
// sum, so such a comparison is inflated by this factor on top of kBoundSlack before it prunes.
float order_slack(std::size_t n) noexcept { return kBoundSlack + static_cast<float>(n) * 0x1p-23f; }

// Besides the contribution and the bound, a scorer gives each posting a `key` that the contribution
// does not decrease in (for a fixed query weight), and `min_key(w, need)`: a key at or below which the
// contribution is at most about `need` (conservatively low, so a posting whose contribution exceeds
// `need` always has a larger key). The window scan's threshold path filters postings by key without
// computing their contributions.
struct DotContribution {
    float operator()(float query_weight, DocIndex, float weight) const noexcept { return query_weight * weight; }
    float bound(float unit) const noexcept { return unit; }
    float key(DocIndex, float weight) const noexcept { return weight; }
    // w * x > need needs x > need / w.
    float min_key(float query_weight, float need) const noexcept { return need / query_weight * 0.999f; }
};

struct Bm25Contribution {
    const std::uint8_t* norms;
    const float* norm_inverse;
    float bound_scale;
    // Lucene's BM25Scorer.score: weight - weight / (1 + freq * normInverse).
    float operator()(float query_weight, DocIndex doc, float tf) const noexcept {
        return query_weight - query_weight / (1.0f + tf * norm_inverse[norms[doc]]);
    }
    // The contribution is w - w / (1 + key): correctly rounded steps, each monotone in key.
    float key(DocIndex doc, float tf) const noexcept { return tf * norm_inverse[norms[doc]]; }
    // w - w / (1 + x) > need needs x > need / (w - need); lowered by 0.1% and 1e-6 for rounding.
    float min_key(float query_weight, float need) const noexcept {
        if (!(need < query_weight)) return std::numeric_limits<float>::infinity();
        return need / (query_weight - need) * 0.999f - 1e-6f;
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

// The delete set of a walk: the caller's plain words when given (one load per candidate), else the
// bitmap through an ascending cursor (candidates arrive in ascending order).
class DeadSet {
public:
    explicit DeadSet(const AllowedDocs& allowed) {
        if (!allowed.deleted_words.empty()) {
            dense_ = DenseBits{allowed.deleted_words};
        } else if (allowed.deleted != nullptr) {
            ascending_.emplace(*allowed.deleted);
        }
    }
    bool contains(DocIndex doc) noexcept {
        if (!dense_.words.empty()) return dense_.contains(doc);
        return ascending_ && ascending_->contains(doc);
    }

private:
    DenseBits dense_;
    std::optional<AscendingMembership> ascending_;
};

// Allow policies of the MaxScore walk. `next_from(d)` is the first document after d the walk may
// return (kTerminated: none); only seeking policies (kSeeks) are asked for it.
struct AllowAll {
    static constexpr bool kSeeks = false;
    bool operator()(DocIndex) const noexcept { return true; }
    DocIndex next_from(DocIndex d) const noexcept { return d + 1; }
};
// The delete set as DeadSet says, the filter (permissive, so mostly dense containers) by lookup.
struct AllowMask {
    static constexpr bool kSeeks = false;
    DeadSet deleted;
    const Bitmap* filter;

    explicit AllowMask(const AllowedDocs* allowed) : deleted(*allowed), filter(allowed->filter) {}
    bool operator()(DocIndex doc) noexcept {
        return !deleted.contains(doc) && (filter == nullptr || filter->contains(doc));
    }
    DocIndex next_from(DocIndex d) const noexcept { return d + 1; }
};
// The filter bitmap as a forward cursor: a rejected candidate moves the walk to the next member.
// Candidates reach it in ascending order, so the cursor only moves forwards.
struct AllowSeek {
    static constexpr bool kSeeks = true;
    Bitmap::Cursor members;
    DeadSet deleted;
    std::uint64_t seeks = 0;

    explicit AllowSeek(const AllowedDocs& allowed) : members(*allowed.filter), deleted(allowed) {}
    // The first allowed document >= d, or kTerminated.
    DocIndex first_from(DocIndex d) noexcept {
        for (;;) {
            ++seeks;
            if (!members.seek(d)) return kTerminated;
            const DocIndex m = members.value();
            if (m >= kTerminated) return kTerminated;
            if (!deleted.contains(m)) return m;
            d = m + 1;
        }
    }
    bool operator()(DocIndex doc) noexcept { return first_from(doc) == doc; }
    DocIndex next_from(DocIndex d) noexcept { return d + 1 >= kTerminated ? kTerminated : first_from(d + 1); }
};

// "a ranks before b": higher score, then smaller doc. A function object, so heap operations inline it.
struct Better {
    bool operator()(const ScoredDoc& a, const ScoredDoc& b) const noexcept {
        return a.score > b.score || (a.score == b.score && a.doc < b.doc);
    }
};
constexpr Better better{};

// The best k documents scoring above `floor` (0, or just below the caller's min_score).
class TopKHeap {
public:
    explicit TopKHeap(std::size_t k, float floor = 0.0f) : k_(k), floor_(floor) { heap_.reserve(k + 1); }
    bool full() const noexcept { return heap_.size() >= k_; }
    // Bounds can prune: the heap is full, or a caller's floor is set from the start.
    bool pruning() const noexcept { return floor_ > 0.0f || full(); }
    // A document must score strictly above this to enter.
    float threshold() const noexcept { return full() ? std::max(heap_.front().score, floor_) : floor_; }
    void offer(DocIndex doc, float score) {
        if (score <= floor_) return;
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
    float floor_;
    std::vector<ScoredDoc> heap_;  // worst on top
};

struct ActiveTerm {
    PostingCursor cursor;
    float query_weight;
    float upper_bound;
    std::uint32_t order;  // position among the query's active terms (the summation order)
};

// The query's terms with postings, each with a cursor and its list's upper bound.
template <class Contribution>
std::vector<ActiveTerm> active_terms(const PostingStore& store, std::span<const QueryTerm> query,
                                     const Contribution& contrib) {
    std::vector<ActiveTerm> terms;
    terms.reserve(query.size());
    for (const QueryTerm& q : query) {
        if (!(q.weight > 0.0f) || store.term_info(q.term).doc_freq == 0) continue;
        PostingCursor c = store.cursor(q.term);
        const float ub = q.weight * contrib.bound(c.max_score()) * kBoundSlack;
        terms.push_back({std::move(c), q.weight, ub, static_cast<std::uint32_t>(terms.size())});
    }
    return terms;
}

template <class Contribution, class Allow>
std::vector<ScoredDoc> maxscore(std::vector<ActiveTerm> terms, std::size_t k, const Contribution& contrib,
                                Allow& allow, TopKStats* stats, float floor) {
    if (k == 0) return {};
    std::sort(terms.begin(), terms.end(),
              [](const ActiveTerm& a, const ActiveTerm& b) { return a.upper_bound < b.upper_bound; });
    const std::size_t n = terms.size();
    std::vector<float> prefix(n);  // prefix[i] = sum of upper bounds of terms[0..i]
    float acc = 0.0f;
    for (std::size_t i = 0; i < n; ++i) prefix[i] = acc += terms[i].upper_bound;
    const float slack = order_slack(n);
    // The walk adds contributions in bound order; a score offered is re-summed in query order from
    // `parts` (by query position). Two summands add alike in either order, so only n >= 3 keeps parts.
    const bool reorder = n >= 3;
    std::vector<float> parts(reorder ? n : 0, 0.0f);

    TopKHeap heap(k, floor);
    std::size_t first_essential = 0;
    std::uint64_t scored = 0;
    std::uint64_t skipped = 0;
    for (;;) {
        const float threshold = heap.threshold();
        if (heap.pruning()) {
            // A document found only in lists [0, first_essential) scores at most prefix[...] <= threshold.
            while (first_essential < n && prefix[first_essential] * slack <= threshold) ++first_essential;
        }
        if (first_essential >= n) break;
        DocIndex candidate = kTerminated;
        for (std::size_t i = first_essential; i < n; ++i) candidate = std::min(candidate, terms[i].cursor.doc());
        if (candidate == kTerminated) break;
        if (heap.pruning()) {
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
            if (bound * slack <= threshold) {
                ++skipped;
                // A seeking filter moves on to its first member past the interval.
                const DocIndex to = Allow::kSeeks ? allow.next_from(end) : end + 1;
                if (to == kTerminated) break;
                for (std::size_t i = first_essential; i < n; ++i) {
                    if (terms[i].cursor.doc() < to) terms[i].cursor.seek(to);
                }
                continue;
            }
        }
        if (!allow(candidate)) {  // skipped inside the walk: never scored, never offered
            if constexpr (Allow::kSeeks) {
                // Straight to the filter's next member: the postings in between are never visited.
                const DocIndex to = allow.next_from(candidate);
                if (to == kTerminated) break;
                for (std::size_t i = first_essential; i < n; ++i) {
                    if (terms[i].cursor.doc() < to) terms[i].cursor.seek(to);
                }
            } else {
                for (std::size_t i = first_essential; i < n; ++i) {
                    if (terms[i].cursor.doc() == candidate) terms[i].cursor.next();
                }
            }
            continue;
        }

        float score = 0.0f;
        for (std::size_t i = first_essential; i < n; ++i) {
            PostingCursor& c = terms[i].cursor;
            if (c.doc() == candidate) {
                const float x = contrib(terms[i].query_weight, candidate, c.weight());
                score += x;
                if (reorder) parts[terms[i].order] = x;
                c.next();
            }
        }
        ++scored;
        bool pruned = false;
        for (std::size_t j = first_essential; j-- > 0;) {
            if (heap.pruning() && (score + prefix[j] * kBoundSlack) * slack <= threshold) {
                pruned = true;
                break;
            }
            PostingCursor& c = terms[j].cursor;
            if (c.shallow_seek(candidate) == kTerminated) continue;
            const float block_bound = terms[j].query_weight * contrib.bound(c.block_max_score()) * kBoundSlack;
            const float rest = j > 0 ? prefix[j - 1] : 0.0f;
            if (heap.pruning() && (score + (rest + block_bound) * kBoundSlack) * slack <= threshold) {
                ++skipped;
                pruned = true;
                break;
            }
            if (c.seek(candidate) == candidate) {
                const float x = contrib(terms[j].query_weight, candidate, c.weight());
                score += x;
                if (reorder) parts[terms[j].order] = x;
            }
        }
        if (reorder) {
            if (!pruned) {
                score = 0.0f;
                for (const float x : parts) score += x;  // absent terms add 0: the reference's float
            }
            std::fill(parts.begin(), parts.end(), 0.0f);
        }
        if (!pruned) heap.offer(candidate, score);
    }
    if (stats != nullptr) {
        stats->docs_scored += scored;
        stats->blocks_skipped += skipped;
    }
    return std::move(heap).sorted();
}

// Dense short queries: bulk window scoring (Lucene's BooleanScorer). Every list adds its postings of
// a window of kWindow documents into accumulators in a tight loop, in query order (so each score is
// the float the exhaustive reference sums), and the window's documents scoring above the k-th score
// are offered in ascending order, the mask tested only for them. Before a window is decoded its lists'
// block bounds are summed: when that cannot beat the k-th score, the window is skipped.
//
// Once the k-th score is high, most windows need no accumulators (the threshold path): a list whose
// window bound the other lists' bounds cannot make up for alone is *required*: a document can beat the
// k-th score only with a posting of it whose contribution exceeds the difference (`need`). Such
// postings are found by their key (no division), the candidates are the documents passing every
// required list, and only they are scored, summing their terms in query order from the weights kept
// per list (the reference's float again). A required list's blocks whose bound is below its need are
// passed over, and when no candidate is left the other lists skip the window undecoded.
template <class Contribution, class Allow>
std::vector<ScoredDoc> window_scan(std::vector<ActiveTerm> terms, std::size_t k, const Contribution& contrib,
                                   Allow& allow, TopKStats* stats, float floor, DocIndex num_docs) {
    if (k == 0) return {};
    constexpr DocIndex kWindow = 2048;
    constexpr std::size_t kWords = kWindow / 64;
    const std::size_t n = terms.size();
    const float slack = order_slack(n);
    TopKHeap heap(k, floor);
    // A window's positions are below num_docs - start: a small store (a frozen memtable's segment)
    // needs no more than its documents.
    const std::size_t span = std::min<std::size_t>(kWindow, std::max<DocIndex>(num_docs, 1));
    std::vector<float> acc(span, 0.0f);
    // The threshold path: per list, the window's weights by position (allocated on its first window,
    // read only where a posting was written) and which positions hold one.
    std::unique_ptr<float[]> weights;
    std::vector<std::uint64_t> present(n * kWords, 0);
    std::vector<float> bounds(n);
    std::vector<float> needs(n);
    std::uint64_t added = 0;
    std::uint64_t skipped = 0;
    std::uint64_t thresholded = 0;
    // Offers the window's documents of `set` (a bit per position) whose score(position, word) beats the
    // k-th score, in ascending order, the mask tested only for them.
    auto offer_set = [&](const std::uint64_t* set, DocIndex start, auto&& score) {
        float threshold = heap.threshold();
        for (std::size_t wi = 0; wi < kWords; ++wi) {
            for (std::uint64_t bits = set[wi]; bits != 0; bits &= bits - 1) {
                const std::size_t i = wi * 64 + static_cast<std::size_t>(std::countr_zero(bits));
                const float s = score(i, wi);
                if (!(s > threshold)) continue;
                const DocIndex d = start + static_cast<DocIndex>(i);
                if (!allow(d)) continue;
                heap.offer(d, s);
                threshold = heap.threshold();
            }
        }
    };
    for (;;) {
        DocIndex start = kTerminated;
        for (const ActiveTerm& t : terms) start = std::min(start, t.cursor.doc());
        if (start == kTerminated) break;
        const DocIndex last = start >= kTerminated - kWindow ? kTerminated - 1 : start + (kWindow - 1);
        bool threshold_path = false;
        if (heap.pruning()) {
            float bound = 0.0f;
            for (std::size_t ti = 0; ti < n; ++ti) {
                PostingCursor& c = terms[ti].cursor;
                bounds[ti] = 0.0f;
                if (c.doc() > last) continue;
                DocIndex end = c.shallow_seek(c.doc());
                float m = c.block_max_score();
                while (end < last) {
                    end = c.shallow_seek(end + 1);
                    if (end == kTerminated) break;
                    m = std::max(m, c.block_max_score());
                }
                bounds[ti] = terms[ti].query_weight * contrib.bound(m) * kBoundSlack;
                bound += bounds[ti];
            }
            const float threshold = heap.threshold();
            if (bound * slack <= threshold) {
                ++skipped;
                for (ActiveTerm& t : terms) {
                    if (t.cursor.doc() <= last) t.cursor.seek(last + 1);
                }
                continue;
            }
            // A document scores at most (its contribution from list t + the other lists' bounds) *
            // slack; it cannot enter when that is <= threshold, so list t is required with
            // need = threshold / slack - others (lowered by 1e-5 of the total for the rounding here).
            const float goal = threshold / slack - bound * 1e-5f;
            for (std::size_t ti = 0; ti < n; ++ti) {
                needs[ti] = goal - (bound - bounds[ti]);  // the other lists' bounds
                if (needs[ti] > 0.0f) threshold_path = true;
            }
        }
        if (!threshold_path) {
            std::uint64_t touched[kWords] = {};
            float* const a = acc.data();
            for (ActiveTerm& t : terms) {
                const float w = t.query_weight;
                t.cursor.for_each_run_through(last, [&](const DocIndex* docs, const float* xs, std::uint32_t count, float) {
                    for (std::uint32_t p = 0; p < count; ++p) {
                        const DocIndex d = docs[p];
                        const DocIndex i = d - start;
                        a[i] += contrib(w, d, xs[p]);
                        touched[i >> 6] |= std::uint64_t{1} << (i & 63u);
                    }
                    added += count;
                });
            }
            // Only the accumulators a posting touched are read (and reset).
            offer_set(touched, start, [&](std::size_t i, std::size_t) {
                const float s = a[i];
                a[i] = 0.0f;
                return s;
            });
            continue;
        }
        // The threshold path. Required lists first: candidates = documents passing all of them.
        ++thresholded;
        if (!weights) weights.reset(new float[n * span]);
        std::uint64_t candidates[kWords];
        std::fill(std::begin(candidates), std::end(candidates), ~std::uint64_t{0});
        bool any = true;
        for (std::size_t ti = 0; ti < n && any; ++ti) {
            if (!(needs[ti] > 0.0f)) continue;
            const float w = terms[ti].query_weight;
            const float need = needs[ti];
            const float min_key = contrib.min_key(w, need);
            float* const wt = weights.get() + ti * span;
            std::uint64_t pass[kWords] = {};
            terms[ti].cursor.for_each_run_through(last, [&](const DocIndex* docs, const float* xs, std::uint32_t count,
                                                           float block_max) {
                // A block whose bound is below the need holds no passing posting.
                if (w * contrib.bound(block_max) * kBoundSlack * kBoundSlack <= need) return;
                for (std::uint32_t p = 0; p < count; ++p) {
                    const DocIndex d = docs[p];
                    const DocIndex i = d - start;
                    wt[i] = xs[p];
                    pass[i >> 6] |= static_cast<std::uint64_t>(contrib.key(d, xs[p]) > min_key) << (i & 63u);
                }
                added += count;
            });
            std::uint64_t left = 0;
            for (std::size_t wi = 0; wi < kWords; ++wi) left |= candidates[wi] &= pass[wi];
            any = left != 0;
        }
        if (any) {
            // The other lists' weights, then every candidate scored in query order.
            for (std::size_t ti = 0; ti < n; ++ti) {
                if (needs[ti] > 0.0f) continue;
                float* const wt = weights.get() + ti * span;
                std::uint64_t* const pres = present.data() + ti * kWords;
                terms[ti].cursor.for_each_run_through(last, [&](const DocIndex* docs, const float* xs, std::uint32_t count, float) {
                    for (std::uint32_t p = 0; p < count; ++p) {
                        const DocIndex i = docs[p] - start;
                        wt[i] = xs[p];
                        pres[i >> 6] |= std::uint64_t{1} << (i & 63u);
                    }
                    added += count;
                });
            }
            offer_set(candidates, start, [&](std::size_t i, std::size_t wi) {
                const DocIndex d = start + static_cast<DocIndex>(i);
                float s = 0.0f;
                for (std::size_t ti = 0; ti < n; ++ti) {
                    // A candidate holds a posting of every required list.
                    if (needs[ti] > 0.0f || ((present[ti * kWords + wi] >> (i & 63u)) & 1u) != 0) {
                        s += contrib(terms[ti].query_weight, d, weights[ti * span + i]);
                    }
                }
                return s;
            });
            for (std::size_t ti = 0; ti < n; ++ti) {
                if (!(needs[ti] > 0.0f)) std::fill_n(present.data() + ti * kWords, kWords, std::uint64_t{0});
            }
        } else {
            ++skipped;
        }
        for (ActiveTerm& t : terms) {
            if (t.cursor.doc() <= last) t.cursor.seek(last + 1);
        }
    }
    if (stats != nullptr) {
        stats->docs_scored += added;
        stats->blocks_skipped += skipped;
        stats->threshold_windows += thresholded;
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

// kBitmap: scores the filter's members directly. Per member, the block bounds of the blocks holding it
// (read without decoding) are summed first; when they cannot beat the k-th score, no member up to the
// nearest block end can, and the filter cursor jumps past it. Otherwise every cursor seeks the member.
template <class Contribution>
std::vector<ScoredDoc> bitmap_walk(std::vector<ActiveTerm> terms, std::size_t k, const Contribution& contrib,
                                   const Bitmap& filter, const AllowedDocs& allowed, TopKStats* stats, float floor) {
    if (k == 0) return {};
    // The terms stay in query order: a member's score is summed as the reference sums it.
    float total = 0.0f;
    for (const ActiveTerm& t : terms) total += t.upper_bound;
    const float slack = order_slack(terms.size());
    TopKHeap heap(k, floor);
    std::uint64_t scored = 0;
    std::uint64_t skipped = 0;
    std::uint64_t seeks = 0;
    Bitmap::Cursor members(filter);
    DeadSet dead(allowed);
    while (members.valid() && !terms.empty()) {
        const DocIndex d = members.value();
        if (d >= kTerminated) break;
        if (dead.contains(d)) {
            members.next();
            continue;
        }
        if (heap.pruning()) {
            const float threshold = heap.threshold();
            if (total * slack <= threshold) break;  // no document can enter any more
            DocIndex end = kTerminated - 1;
            float bound = 0.0f;
            bool live = false;
            for (ActiveTerm& t : terms) {
                PostingCursor& c = t.cursor;
                if (c.doc() == kTerminated) continue;
                live = true;
                if (c.doc() > d) {  // the list has nothing in [d, c.doc())
                    end = std::min(end, c.doc() - 1);
                    continue;
                }
                const DocIndex last = c.shallow_seek(d);
                if (last == kTerminated) continue;  // nothing left at or after d
                end = std::min(end, last);
                bound += t.query_weight * contrib.bound(c.block_max_score()) * kBoundSlack;
            }
            if (!live) break;
            if (bound * slack <= threshold) {
                ++skipped;
                ++seeks;
                if (end >= kTerminated - 1 || !members.seek(end + 1)) break;
                continue;
            }
        }
        float score = 0.0f;
        for (ActiveTerm& t : terms) {
            PostingCursor& c = t.cursor;
            if (c.seek(d) == d) score += contrib(t.query_weight, d, c.weight());
        }
        ++scored;
        heap.offer(d, score);
        members.next();
        ++seeks;
    }
    if (stats != nullptr) {
        stats->docs_scored += scored;
        stats->blocks_skipped += skipped;
        stats->filter_seeks += seeks;
    }
    return std::move(heap).sorted();
}

// Whether an unfiltered or kMask walk scores the query with the window scan: short dense queries (at
// most window_max_terms lists holding at least window_min_density x the store's documents).
bool takes_window_scan(const FilterWalkParams& params, std::size_t terms, std::uint64_t postings,
                       std::uint64_t num_docs) noexcept {
    return terms <= params.window_max_terms &&
           static_cast<double>(postings) >= params.window_min_density * static_cast<double>(num_docs);
}

template <class Contribution>
std::vector<ScoredDoc> dispatch_allow(const PostingStore& store, std::span<const QueryTerm> query, std::size_t k,
                                      const Contribution& contrib, TopKStats* stats, const AllowedDocs* allowed,
                                      const FilterWalkParams& params, float min_score) {
    // Scores at or above min_score enter: the heap's floor is the largest float below it.
    const float floor = min_score > 0.0f ? std::nextafter(min_score, 0.0f) : 0.0f;
    std::vector<ActiveTerm> terms = active_terms(store, query, contrib);
    std::uint64_t postings = 0;
    for (const ActiveTerm& t : terms) postings += t.cursor.doc_freq();
    const bool dense = takes_window_scan(params, terms.size(), postings, store.num_docs());
    if (allowed == nullptr || !allowed->restricts()) {
        if (stats != nullptr) stats->walk = FilterWalk::kNone;
        AllowAll all;
        return dense ? window_scan(std::move(terms), k, contrib, all, stats, floor, store.num_docs())
                     : maxscore(std::move(terms), k, contrib, all, stats, floor);
    }
    FilterWalk walk = FilterWalk::kMask;
    if (allowed->filter != nullptr) {
        walk = choose_filter_walk(params, true, allowed->filter->cardinality(), store.num_docs(), terms.size(), postings);
    }
    if (stats != nullptr) stats->walk = walk;
    if (walk == FilterWalk::kBitmap) {
        return bitmap_walk(std::move(terms), k, contrib, *allowed->filter, *allowed, stats, floor);
    }
    if (walk == FilterWalk::kSeek) {
        AllowSeek seek(*allowed);
        auto out = maxscore(std::move(terms), k, contrib, seek, stats, floor);
        if (stats != nullptr) stats->filter_seeks += seek.seeks;
        return out;
    }
    AllowMask mask(allowed);
    return dense ? window_scan(std::move(terms), k, contrib, mask, stats, floor, store.num_docs())
                 : maxscore(std::move(terms), k, contrib, mask, stats, floor);
}

Bm25Contribution bm25_contribution(const Bm25Scorer& s) {
    return {s.norms.data(), s.norm_inverse.data(), s.bound_scale};
}

}  // namespace

const char* to_string(FilterWalk w) noexcept {
    switch (w) {
        case FilterWalk::kAuto: return "auto";
        case FilterWalk::kNone: return "none";
        case FilterWalk::kMask: return "mask";
        case FilterWalk::kSeek: return "seek";
        case FilterWalk::kBitmap: return "bitmap";
    }
    return "auto";
}

FilterWalk choose_filter_walk(const FilterWalkParams& params, bool has_filter, std::uint64_t matches,
                              std::uint64_t num_docs, std::size_t terms, std::uint64_t postings) noexcept {
    if (!has_filter) return FilterWalk::kMask;
    if (params.force == FilterWalk::kMask || params.force == FilterWalk::kSeek || params.force == FilterWalk::kBitmap) {
        return params.force;
    }
    const double m = static_cast<double>(matches);
    if (m * static_cast<double>(terms) <= params.bitmap_max_ratio * static_cast<double>(postings)) return FilterWalk::kBitmap;
    // A query the mask walk scores with the window scan keeps it down to a lower share: the bulk scan costs about the same whatever the filter keeps.
    const double mask_from = takes_window_scan(params, terms, postings, num_docs) ? params.window_mask_min_selectivity
                                                                                  : params.mask_min_selectivity;
    if (m >= mask_from * static_cast<double>(num_docs)) return FilterWalk::kMask;
    return FilterWalk::kSeek;
}

std::vector<ScoredDoc> search_top_k(const PostingStore& store, std::span<const QueryTerm> query, std::size_t k,
                                    const Scorer& scorer, TopKStats* stats, const AllowedDocs* allowed,
                                    const FilterWalkParams& walk, float min_score) {
    if (const auto* bm25 = std::get_if<Bm25Scorer>(&scorer)) {
        return dispatch_allow(store, query, k, bm25_contribution(*bm25), stats, allowed, walk, min_score);
    }
    return dispatch_allow(store, query, k, DotContribution{}, stats, allowed, walk, min_score);
}

std::vector<ScoredDoc> search_exhaustive(const PostingStore& store, std::span<const QueryTerm> query,
                                         std::size_t k, const Scorer& scorer, const AllowedDocs* allowed) {
    if (const auto* bm25 = std::get_if<Bm25Scorer>(&scorer)) {
        return exhaustive(store, query, k, bm25_contribution(*bm25), allowed);
    }
    return exhaustive(store, query, k, DotContribution{}, allowed);
}

}  // namespace quiver::sparse
