// HNSW search: greedy descent on the upper levels, beam search on one level.
#include <algorithm>
#include <cstring>

#include <unistd.h>

#include "index/hnsw/hnsw_graph.h"

namespace quiver::index {
namespace {

using detail::Candidate;

// Candidates are ordered by (distance, slot): a total order, so ties between equal distances
// (duplicate vectors, equal integer SQ8 estimates) are broken the same way by the two-heap walk and
// the sorted beam, and a filter that allows everything walks exactly as no filter does.
struct MinFirst {  // for a min-heap with std::*_heap (which builds max-heaps)
    bool operator()(const Candidate& a, const Candidate& b) const noexcept { return b < a; }
};
struct MaxFirst {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept { return a < b; }
};

// How many neighbours ahead to prefetch while computing float32 distances one at a time (a float
// record spans up to nine cache lines, so a deeper lookahead only competes for line-fill buffers).
constexpr std::size_t kPrefetchAhead = 2;
// The same for the float32 re-score of a coded walk: the candidates are known up front and nothing
// else competes for the line-fill buffers, so the lookahead is deeper.
constexpr std::size_t kRescoreAhead = 6;

/// A distance that scores a whole neighbour list in one call (`batch`) and can start the loads of one
/// node early (`prefetch`): the walk then marks the visited set, prefetches every unvisited
/// neighbour's payload at once (all their cache misses in flight together) and scores them in one
/// call. Used for payloads of a few cache lines (codes, and float32 vectors of up to 64 dimensions);
/// larger float32 records keep the one-at-a-time lookahead.
template <class D>
concept BatchDistance = requires(const D& d, const std::uint32_t* ids, std::size_t n, float* out, std::uint32_t id) {
    d.batch(ids, n, out);
    d.prefetch(id);
};

}  // namespace

namespace {

/// The nodes a walk may return: every one (unchecked walks), or those neither deleted nor outside
/// the filter. `prefetch(slot)` requests what the test of a node will read; the walks call it with the
/// node's payload, so those misses overlap the distance's (in the load test's profile the test's
/// loads of `deleted` and `labels`, one miss each per node, were most of the checked walk's own time).
struct AllowAll {
    bool operator()(std::uint32_t) const noexcept { return true; }
    void prefetch(std::uint32_t) const noexcept {}
};
struct Allowed {
    const HnswGraph& g;
    const LabelFilter* filter;
    bool operator()(std::uint32_t id) const noexcept {
        return g.deleted[id] == 0 && (filter == nullptr || filter->allows(g.labels[id]));
    }
    void prefetch(std::uint32_t id) const noexcept {
        __builtin_prefetch(g.deleted.data() + id, 0, 3);
        if (filter != nullptr) __builtin_prefetch(g.labels.data() + id, 0, 3);
    }
};

/// Greedy descent; `distance(slot)` is the distance from the query to a node.
template <bool kLocked, class Distance>
std::uint32_t greedy_descent_impl(const HnswGraph& g, const Distance& distance, std::uint32_t ep,
                                  int from_level, int stop_level) {
    std::uint32_t cur = ep;
    float cur_d = distance(cur);
    std::uint32_t buf[1024];
    for (int level = from_level; level > stop_level; --level) {
        bool changed = true;
        while (changed) {
            changed = false;
            const std::uint32_t* l = g.links(cur, level);
            std::uint32_t n;
            const std::uint32_t* ids;
            if constexpr (kLocked) {
                g.locks.lock(cur);
                n = l[0];
                std::memcpy(buf, l + 1, n * sizeof(std::uint32_t));
                g.locks.unlock(cur);
                ids = buf;
            } else {
                n = l[0];
                ids = l + 1;
            }
            if constexpr (BatchDistance<Distance>) {
                // Every neighbour's payload requested at once and scored in one call (one miss latency
                // per hop, not one per neighbour); the same first strict minimum as one at a time.
                float dists[1024];
                for (std::uint32_t i = 0; i < n; ++i) distance.prefetch(ids[i]);
                distance.batch(ids, n, dists);
                for (std::uint32_t i = 0; i < n; ++i) {
                    if (dists[i] < cur_d) {
                        cur_d = dists[i];
                        cur = ids[i];
                        changed = true;
                    }
                }
                continue;
            }
            for (std::uint32_t i = 0; i < n; ++i) {
                const std::uint32_t c = ids[i];
                const float d = distance(c);
                if (d < cur_d) {
                    cur_d = d;
                    cur = c;
                    changed = true;
                }
            }
        }
    }
    return cur;
}

/// Beam search on one level; `distance(slot)` is the distance from the query to a node.
template <bool kLocked, bool kChecked, class Distance>
void search_layer_impl(const HnswGraph& g, const Distance& distance, std::uint32_t ep, int level,
                       std::size_t ef, const LabelFilter* filter, HnswGraph::Scratch& s) {
    auto& visited = s.visited;
    visited.next();
    auto& cand = s.candidates;
    auto& top = s.results;
    cand.clear();
    top.clear();

    const Allowed allow{g, filter};
    auto allowed = [&](std::uint32_t id) { return !kChecked || allow(id); };

    // The worst kept result, (distance, slot); (+infinity, max) while nothing is kept.
    Candidate lower{std::numeric_limits<float>::infinity(), std::numeric_limits<std::uint32_t>::max()};
    const float d0 = distance(ep);
    if (allowed(ep)) {
        top.emplace_back(d0, ep);
        lower = top.front();
    }
    cand.emplace_back(d0, ep);
    visited.test_and_mark(ep);

    std::uint32_t unvisited[1024];
    std::uint32_t buf[1024];
    [[maybe_unused]] float dists[1024];
    while (!cand.empty()) {
        const Candidate c = cand.front();
        if (lower < c && (!kChecked || top.size() >= ef)) break;
        std::pop_heap(cand.begin(), cand.end(), MinFirst{});
        cand.pop_back();
        // The likely next node to expand (unless a neighbour of this one beats it): request its link
        // list now, a whole expansion ahead of its use (at the end of the loop is too late to hide a miss).
        if (!cand.empty()) g.prefetch_links(cand.front().second, level);

        const std::uint32_t* l = g.links(c.second, level);
        std::uint32_t n;
        const std::uint32_t* ids;
        if constexpr (kLocked) {
            g.locks.lock(c.second);
            n = l[0];
            std::memcpy(buf, l + 1, n * sizeof(std::uint32_t));
            g.locks.unlock(c.second);
            ids = buf;
        } else {
            n = l[0];
            ids = l + 1;
        }
        // A neighbour enters the beam when it beats the worst kept result (or the beam is not full).
        auto offer = [&](std::uint32_t id, float d) {
            if (top.size() < ef || d < lower.first || (d == lower.first && id < lower.second)) {
                cand.emplace_back(d, id);
                std::push_heap(cand.begin(), cand.end(), MinFirst{});
                if (allowed(id)) {
                    top.emplace_back(d, id);
                    std::push_heap(top.begin(), top.end(), MaxFirst{});
                    if (top.size() > ef) {
                        std::pop_heap(top.begin(), top.end(), MaxFirst{});
                        top.pop_back();
                    }
                }
                if (!top.empty()) lower = top.front();
            }
        };
        std::size_t m = 0;
        if constexpr (BatchDistance<Distance>) {
            // Visited tags first (their loads overlap), then every unvisited payload requested at
            // once, then one batched score; the offers run in neighbour order, as one at a time would.
            for (std::uint32_t i = 0; i < n; ++i) __builtin_prefetch(visited.slot_ptr(ids[i]), 1, 3);
            for (std::uint32_t i = 0; i < n; ++i) {
                const std::uint32_t id = ids[i];
                if (!visited.test_and_mark(id)) {
                    distance.prefetch(id);
                    if constexpr (kChecked) allow.prefetch(id);
                    unvisited[m++] = id;
                }
            }
            distance.batch(unvisited, m, dists);
            // The walk usually moves on to this list's best neighbour when it beats the best waiting
            // candidate: its link list (past the code's lines) is requested before the offers.
            if (m > 0) {
                std::size_t best = 0;
                for (std::size_t j = 1; j < m; ++j) best = dists[j] < dists[best] ? j : best;
                if (cand.empty() || dists[best] < cand.front().first) g.prefetch_links(unvisited[best], level);
            }
            for (std::size_t j = 0; j < m; ++j) offer(unvisited[j], dists[j]);
        } else {
            for (std::uint32_t i = 0; i < n; ++i) {
                const std::uint32_t id = ids[i];
                if (!visited.test_and_mark(id)) unvisited[m++] = id;
            }
            for (std::size_t j = 0; j < std::min(m, kPrefetchAhead); ++j) g.prefetch_float(unvisited[j]);
            for (std::size_t j = 0; j < m; ++j) {
                if (j + kPrefetchAhead < m) g.prefetch_float(unvisited[j + kPrefetchAhead]);
                offer(unvisited[j], distance(unvisited[j]));
            }
        }
        if (!cand.empty()) {
            // The next node to expand: fetch its whole link list while this one's distances retire.
            g.prefetch_links(cand.front().second, level);
        }
    }
}

/// Offers scored neighbours to the beam in list order. Only a distance at or below the beam's bound
/// on entry can enter (the bound only falls; a tie enters when its slot is lower, which insert()
/// decides), so the indexes of those are gathered first (`pass`),
/// without a branch per neighbour (whether a neighbour beats the bound is data the predictor cannot
/// learn; most do not), and inserted in order, each re-tested against the bound as it stands: the
/// same beam as offering every neighbour one at a time.
inline std::size_t gather_below(const float* dists, std::size_t m, float bound, std::uint32_t* pass) noexcept {
    std::size_t p = 0;
    for (std::size_t j = 0; j < m; ++j) {
        pass[p] = static_cast<std::uint32_t>(j);
        p += dists[j] <= bound ? 1 : 0;
    }
    return p;
}

/// A caller's bar for a walk (SearchParams::bound): `distance` (+infinity = none), and `rank`, the
/// returnable beam entry (0-based) beyond which a node farther than the bar is not walked.
struct WalkBar {
    float distance = std::numeric_limits<float>::infinity();
    std::size_t rank = 0;
};

/// Inserts one scored node into a beam; a CheckedBeam also records whether the search may return it
/// (`allowed(slot)`, asked only for a node that enters).
template <class Beam, class Allowed>
inline void beam_insert(Beam& beam, float d, std::uint32_t id, const Allowed& allowed) {
    if constexpr (std::is_same_v<Beam, detail::CheckedBeam>) {
        if (beam.admits(d, id)) beam.insert(d, id, allowed(id));
    } else {
        beam.insert(d, id);
    }
}
template <class Beam, class Allowed>
inline void insert_gathered(Beam& beam, const float* dists, const std::uint32_t* ids, const std::uint32_t* pass,
                            std::size_t p, const Allowed& allowed) {
    for (std::size_t i = 0; i < p; ++i) beam_insert(beam, dists[pass[i]], ids[pass[i]], allowed);
}

/// Beam search on one level for a search with no concurrent inserts (queries, and the build's
/// reachability checks). The beam is one SortedBeam (see scratch.h) instead of two heaps; the visited
/// set is marked without a branch per neighbour. Without kChecked every node reached may be returned
/// (no deleted node, no filter); with it the beam is a CheckedBeam and `allowed(slot)` says which may
/// (the walk is the two-heap walk's, see CheckedBeam). Leaves the beam's returnable entries in
/// scratch.results, ascending by distance.
///
/// With a `bar` (a distance the caller needs nothing beyond: it holds k nearer results from other
/// segments), the walk expands only nodes no farther than min(the beam's bound, max(the bar, the
/// distance of the beam's returnable entry of rank `bar.rank`)), and admits a neighbour list's nodes
/// under that limit as it stood before the list: nodes nearer than the bar are walked as without
/// it, farther ones only while they are among the beam's nearest `bar.rank + 1` returnable entries,
/// so the walk narrows to that width where the bar is tight (as Lucene's MultiLeafKnnCollector
/// shares its segments' k-th score, with a greedy rank).
template <bool kChecked, class Distance, class Allowed>
void search_layer_sorted(const HnswGraph& g, const Distance& distance, std::uint32_t ep, int level,
                         std::size_t ef, HnswGraph::Scratch& s, const Allowed& allowed, const WalkBar& bar = {}) {
    auto& visited = s.visited;
    visited.next();
    auto& beam = [&]() -> auto& {
        if constexpr (kChecked) {
            return s.checked_beam;
        } else {
            return s.beam;
        }
    }();
    beam.reset(ef);
    beam_insert(beam, distance(ep), ep, allowed);
    visited.test_and_mark(ep);

    std::uint32_t unvisited[1024];
    std::uint32_t pass[1024];
    float dists[1024];
    const bool barred = bar.distance < std::numeric_limits<float>::infinity();
    while (beam.has_next()) {
        // What a neighbour must beat to enter: the beam's bound, lowered by a bar (the same until the
        // list's insertions: popping an entry moves neither).
        const float bound = barred ? std::min(beam.bound(), std::max(beam.returnable_distance(bar.rank), bar.distance))
                                   : beam.bound();
        if (barred && beam.next_distance() > bound) break;
        const std::uint32_t c = beam.pop();
        // The likely next node to expand: its link list is requested a whole expansion ahead.
        if (beam.has_next()) g.prefetch_links(beam.next(), level);
        const std::uint32_t* l = g.links(c, level);
        const std::uint32_t n = l[0];
        const std::uint32_t* ids = l + 1;
        if constexpr (BatchDistance<Distance>) {
            // Every unvisited payload requested at once, then one batched score; insertions in
            // neighbour order, as one at a time would.
            const std::size_t m = visited.mark_new(ids, n, unvisited);
            for (std::size_t j = 0; j < m; ++j) {
                distance.prefetch(unvisited[j]);
                allowed.prefetch(unvisited[j]);
            }
            distance.batch(unvisited, m, dists);
            // The walk usually moves on to this list's best neighbour when it beats the closest
            // unexpanded entry: its link list is requested before the insertions (found in the
            // pass that gathers the neighbours below the bound).
            std::size_t p = 0, best = 0;
            for (std::size_t j = 0; j < m; ++j) {
                pass[p] = static_cast<std::uint32_t>(j);
                p += dists[j] <= bound ? 1 : 0;
                best = dists[j] < dists[best] ? j : best;
            }
            if (p > 0 && dists[best] < beam.next_distance()) g.prefetch_links(unvisited[best], level);
            insert_gathered(beam, dists, unvisited, pass, p, allowed);
        } else {
            const std::size_t m = visited.mark_new(ids, n, unvisited);
            for (std::size_t j = 0; j < m; ++j) allowed.prefetch(unvisited[j]);
            for (std::size_t j = 0; j < std::min(m, kPrefetchAhead); ++j) g.prefetch_float(unvisited[j]);
            for (std::size_t j = 0; j < m; ++j) {
                if (j + kPrefetchAhead < m) g.prefetch_float(unvisited[j + kPrefetchAhead]);
                dists[j] = distance(unvisited[j]);
            }
            insert_gathered(beam, dists, unvisited, pass, gather_below(dists, m, bound, pass), allowed);
        }
        if (beam.has_next()) g.prefetch_links(beam.next(), level);
    }
    beam.copy_to(s.results);
}

/// Float32 distances to the stored vectors.
struct FloatDistance {
    const HnswGraph& g;
    const float* q;
    float operator()(std::uint32_t s) const noexcept { return g.dist(q, g.vec(s), g.dim); }
};

/// Float32 distances to small vectors (HnswGraph::small_vectors: up to 64 dimensions): a BatchDistance,
/// so the walk requests every unvisited neighbour's vector at once and then scores the list. The same
/// distances, in the same order, as FloatDistance: the walk visits and returns exactly what it did
/// before. Measured (session 13, `quiver bench ann` on `quiver gen` 100k x 32, L2, 2 build seeds, warm
/// passes, five interleaved pairs): 6-16% more QPS at recall@10 0.95 (61.5k-74.7k before, 71.3k-79.0k
/// after). Not for the locked walks of a concurrent build (their link lists are copied under the node's
/// lock first); its `sorted_walk` (hnsw_build.cpp) keeps the lookahead of two: requesting every vector
/// at once there made 2-thread builds of the same data about 8% slower (three pairs).
struct SmallFloatDistance {
    const HnswGraph& g;
    const float* q;
    float operator()(std::uint32_t s) const noexcept { return g.dist(q, g.vec(s), g.dim); }
    void prefetch(std::uint32_t s) const noexcept { g.prefetch_float(s); }
    void batch(const std::uint32_t* ids, std::size_t n, float* out) const noexcept {
        for (std::size_t j = 0; j < n; ++j) out[j] = g.dist(q, g.vec(ids[j]), g.dim);
    }
};

/// Code estimates to the record payloads. A BatchDistance (codes are a few cache lines at most), so
/// every codec's walk gets the prefetch-all step; the estimates themselves are one call per code.
struct CodeDistance {
    const HnswGraph& g;
    const CodeEstimator& est;
    float operator()(std::uint32_t s) const noexcept { return est.distance(g.code(s)); }
    void prefetch(std::uint32_t s) const noexcept { g.prefetch_code(s); }
    void batch(const std::uint32_t* ids, std::size_t n, float* out) const noexcept {
        for (std::size_t j = 0; j < n; ++j) out[j] = est.distance(g.code(ids[j]));
    }
};

/// Integer SQ8 estimates (Int8Query) to the record payloads; kTerms adds the per-slot code term.
/// A BatchDistance: the beam search scores each neighbour list with one u8s8_dot_batch call.
template <bool kTerms>
struct Int8Distance {
    const HnswGraph& g;
    const std::int8_t* weights;
    float scale;
    float bias;
    const float* terms;
    float estimate(std::int32_t dot, std::uint32_t s) const noexcept {
        const float e = bias - scale * static_cast<float>(dot);
        if constexpr (kTerms) return e + terms[s];
        return e;
    }
    float operator()(std::uint32_t s) const noexcept { return estimate(g.u8s8_dot(g.code(s), weights, g.dim), s); }
    void prefetch(std::uint32_t s) const noexcept {
        g.prefetch_code(s);
        if constexpr (kTerms) __builtin_prefetch(terms + s, 0, 3);
    }
    void batch(const std::uint32_t* ids, std::size_t n, float* out) const noexcept {
        const std::uint8_t* codes[1024];
        std::int32_t dots[1024];
        for (std::size_t j = 0; j < n; ++j) codes[j] = g.code(ids[j]);
        g.u8s8_dot_batch(codes, n, weights, g.dim, dots);
        for (std::size_t j = 0; j < n; ++j) out[j] = estimate(dots[j], ids[j]);
    }
};

}  // namespace

template <bool kLocked>
std::uint32_t HnswGraph::greedy_descent(const float* q, std::uint32_t ep, int from_level,
                                        int stop_level) const {
    if constexpr (!kLocked) {
        if (small_vectors()) return greedy_descent_impl<false>(*this, SmallFloatDistance{*this, q}, ep, from_level, stop_level);
    }
    return greedy_descent_impl<kLocked>(*this, FloatDistance{*this, q}, ep, from_level, stop_level);
}

bool HnswGraph::checked_beam_suits(const LabelFilter* filter) const noexcept {
    return (filter == nullptr || filter->mostly_allows()) && num_deleted * 2 <= count;
}

namespace {

/// The beam search of an unlocked walk: the sorted beam when every node may be returned, the checked
/// sorted beam under a mask that allows most nodes, else the two heaps (which ignore `bar`).
template <class Distance>
void walk_unlocked(const HnswGraph& g, const Distance& distance, std::uint32_t ep, int level, std::size_t ef,
                   bool checked, const LabelFilter* filter, HnswGraph::Scratch& s, const WalkBar& bar = {}) {
    if (!checked) {
        search_layer_sorted<false>(g, distance, ep, level, ef, s, AllowAll{}, bar);
    } else if (g.checked_beam_suits(filter)) {
        search_layer_sorted<true>(g, distance, ep, level, ef, s, Allowed{g, filter}, bar);
    } else {
        search_layer_impl<false, true>(g, distance, ep, level, ef, filter, s);
    }
}

}  // namespace

template <bool kLocked, bool kChecked>
void HnswGraph::search_layer(const float* q, std::uint32_t ep, int level, std::size_t ef,
                             const LabelFilter* filter, Scratch& s) const {
    auto walk = [&](const auto& distance) {
        if constexpr (kLocked) {
            search_layer_impl<kLocked, kChecked>(*this, distance, ep, level, ef, filter, s);
        } else {
            walk_unlocked(*this, distance, ep, level, ef, kChecked, filter, s);
        }
    };
    if constexpr (!kLocked) {
        if (small_vectors()) return walk(SmallFloatDistance{*this, q});
    }
    walk(FloatDistance{*this, q});
}


void HnswGraph::search_one(const float* q, std::size_t k, std::size_t ef, const LabelFilter* filter,
                           Scratch& s, Label* out_labels, float* out_distances, float bar) const {
    const int top_level = max_level.load(std::memory_order_acquire);
    if (top_level < 0) return;
    const std::uint32_t ep = greedy_descent<false>(q, entry.load(std::memory_order_acquire), top_level, 0);
    // With a bar, nodes farther than it are walked while among the nearest ef/2 + 1. On issue 10's
    // 11-segment state (uniform 32-d vectors, k 10, ef 64) a tenth of the beam (Lucene's greediness
    // 0.9) cut recall@10 from 0.932 to 0.80-0.88; half of it costs 0.004 (docs/collections.md).
    const WalkBar wb{bar, ef / 2};
    const bool checked = num_deleted != 0 || filter != nullptr;
    auto walk = [&](const auto& d) { walk_unlocked(*this, d, ep, 0, ef, checked, filter, s, wb); };
    if (small_vectors()) {
        walk(SmallFloatDistance{*this, q});
    } else {
        walk(FloatDistance{*this, q});
    }
    // The best k of the beam, ascending (ties by slot): a partial sort, not a sort of all ef.
    auto& top = s.results;
    const std::size_t m = std::min(k, top.size());
    std::partial_sort(top.begin(), top.begin() + static_cast<long>(m), top.end());
    for (std::size_t j = 0; j < m; ++j) {
        out_labels[j] = labels[top[j].second];
        out_distances[j] = top[j].first;
    }
}

std::size_t HnswGraph::default_rescore(std::size_t k, std::size_t ef, bool sq8) noexcept {
    // SQ8's estimates rank so close to float32 that the true top k sit in the best 1.5k of the beam:
    // at k = 10, re-scoring 15 gave exactly the recall of re-scoring 40 at every ef measured (GloVe-100k
    // ef 160-512, recall 0.939-0.994; SIFT ef 12-96, 0.897-0.997), and 10 lost 0.4-1.1 points. 2k
    // keeps a margin and halves the float32 reads of a large k. At least 32, as for every codec: a
    // small k leaves no room for the estimates' errors among near-duplicates (the crash test's k = 1
    // searches over 8-dimensional vectors, some pairs 1e-4 apart, failed with a depth of 2). 4k (at
    // least 32) leaves coarser codecs theirs.
    if (sq8) return std::max(k, std::min(ef, std::max<std::size_t>(2 * k, 32)));
    return std::max(k, std::min(ef, std::max<std::size_t>(4 * k, 32)));
}

void HnswGraph::search_one_coded(const float* q, std::size_t k, std::size_t ef, std::size_t rescore,
                                 const LabelFilter* filter, Scratch& s, Label* out_labels,
                                 float* out_distances) const {
    const int top_level = max_level.load(std::memory_order_acquire);
    if (top_level < 0) return;
    const std::uint32_t ep0 = entry.load(std::memory_order_acquire);
    const bool checked = num_deleted != 0 || filter != nullptr;
    auto walk = [&](const auto& d) {
        const std::uint32_t ep = greedy_descent_impl<false>(*this, d, ep0, top_level, 0);
        walk_unlocked(*this, d, ep, 0, ef, checked, filter, s);
    };
    if (int_walk && codec->int8_query(q, s.int_query)) {
        const Int8Query& iq = s.int_query;
        if (code_terms.empty()) {
            walk(Int8Distance<false>{*this, iq.weights.data(), iq.scale, iq.bias, nullptr});
        } else {
            walk(Int8Distance<true>{*this, iq.weights.data(), iq.scale, iq.bias, code_terms.data()});
        }
    } else {
        const std::unique_ptr<CodeEstimator> est = codec->estimator(q);
        walk(CodeDistance{*this, *est});
    }
    // The beam by code estimate (a max-heap of up to ef).
    auto& top = s.results;
    std::size_t depth = rescore == SearchParams::kRescoreDefault ? default_rescore(k, ef, int_walk)
                        : rescore == 0                           ? 0
                                                                 : std::max(rescore, k);
    depth = std::min(depth, top.size());
    if (depth == 0) {
        const std::size_t m = std::min(k, top.size());
        std::partial_sort(top.begin(), top.begin() + static_cast<long>(m), top.end());
    } else {
        // Re-score the best `depth` by estimate (selected in linear time, ties by slot; no full sort)
        // with float32 vectors (from memory, or read from disk) and keep the best k of them. A vector
        // that cannot be read keeps its code estimate.
        if (depth < top.size()) std::nth_element(top.begin(), top.begin() + static_cast<long>(depth), top.end());
        top.resize(depth);
        if (on_disk()) {
            s.vector_buf.resize(dim);
            for (auto& c : top) {
                if (read_vector(c.second, s.vector_buf.data())) c.first = dist(q, s.vector_buf.data(), dim);
            }
        } else {
            const std::size_t line_bytes = dim * sizeof(float);
            auto prefetch = [&](std::uint32_t slot) {
                const char* p = reinterpret_cast<const char*>(vec(slot));
                for (std::size_t off = 0; off < line_bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
            };
            for (std::size_t j = 0; j < std::min(depth, kRescoreAhead); ++j) prefetch(top[j].second);
            for (std::size_t j = 0; j < depth; ++j) {
                if (j + kRescoreAhead < depth) prefetch(top[j + kRescoreAhead].second);
                top[j].first = dist(q, vec(top[j].second), dim);
            }
        }
        const std::size_t m = std::min(k, top.size());
        std::partial_sort(top.begin(), top.begin() + static_cast<long>(m), top.end());
    }
    const std::size_t m = std::min(k, top.size());
    for (std::size_t j = 0; j < m; ++j) {
        out_labels[j] = labels[top[j].second];
        out_distances[j] = top[j].first;
    }
}

bool HnswGraph::read_vector(std::uint32_t s, float* out) const noexcept {
    const std::size_t bytes = dim * sizeof(float);
    if (!on_disk()) {
        std::memcpy(out, vec(s), bytes);
        return true;
    }
    auto* dst = reinterpret_cast<char*>(out);
    std::size_t done = 0;
    const auto base = static_cast<off_t>(disk_offset + static_cast<std::uint64_t>(s) * bytes);
    while (done < bytes) {
        const ssize_t got = ::pread(disk_fd->fd, dst + done, bytes - done, base + static_cast<off_t>(done));
        if (got <= 0) return false;
        done += static_cast<std::size_t>(got);
    }
    return true;
}

template std::uint32_t HnswGraph::greedy_descent<true>(const float*, std::uint32_t, int, int) const;
template std::uint32_t HnswGraph::greedy_descent<false>(const float*, std::uint32_t, int, int) const;
template void HnswGraph::search_layer<true, true>(const float*, std::uint32_t, int, std::size_t,
                                                  const LabelFilter*, Scratch&) const;
template void HnswGraph::search_layer<true, false>(const float*, std::uint32_t, int, std::size_t,
                                                   const LabelFilter*, Scratch&) const;
template void HnswGraph::search_layer<false, true>(const float*, std::uint32_t, int, std::size_t,
                                                   const LabelFilter*, Scratch&) const;
template void HnswGraph::search_layer<false, false>(const float*, std::uint32_t, int, std::size_t,
                                                    const LabelFilter*, Scratch&) const;

}  // namespace quiver::index
