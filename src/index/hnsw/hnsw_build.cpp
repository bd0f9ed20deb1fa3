// HNSW construction: level draw, insertion, heuristic neighbour selection, reverse-link repair.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>

#include "index/hnsw/hnsw_graph.h"
#include "quiver/core/thread_pool.h"

namespace quiver::index {

using detail::Candidate;

namespace {

constexpr std::uint32_t kNoTarget = std::numeric_limits<std::uint32_t>::max();

/// The build's beam search on one level of a graph with no deleted node: the sorted beam of queries
/// (hnsw_search.cpp's search_layer_sorted, float32 distances), where the two-heap walk kept
/// every candidate in a heap and copied each link list before reading it. With kLocked (other
/// inserts run at the same time) a list is read under its node's lock, only while its unvisited
/// ids are marked and collected. With a `target` (the reachability check's search for a node's own
/// vector), the walk ends as soon as the target enters the beam and returns true; otherwise it
/// returns false and leaves the beam in s.results, ascending by distance.
template <bool kLocked>
bool sorted_walk(const HnswGraph& g, const float* q, std::uint32_t ep, int level, std::size_t ef,
                 detail::SearchScratch& s, std::uint32_t target = kNoTarget) {
    auto& visited = s.visited;
    visited.next();
    auto& beam = s.beam;
    beam.reset(ef);
    if (ep == target) return true;
    beam.insert(g.dist(q, g.vec(ep), g.dim), ep);
    visited.test_and_mark(ep);
    constexpr std::size_t kAhead = 2;  // vectors prefetched ahead of their distance (as the query walk)
    std::uint32_t unvisited[1024];
    while (beam.has_next()) {
        const std::uint32_t c = beam.pop();
        if (beam.has_next()) g.prefetch_links(beam.next(), level);
        const std::uint32_t* l = g.links(c, level);
        std::size_t m = 0;
        if constexpr (kLocked) {
            g.locks.lock(c);
            m = visited.mark_new(l + 1, l[0], unvisited);
            g.locks.unlock(c);
        } else {
            m = visited.mark_new(l + 1, l[0], unvisited);
        }
        for (std::size_t j = 0; j < std::min(m, kAhead); ++j) g.prefetch_float(unvisited[j]);
        for (std::size_t j = 0; j < m; ++j) {
            if (j + kAhead < m) g.prefetch_float(unvisited[j + kAhead]);
            const std::uint32_t id = unvisited[j];
            const float d = g.dist(q, g.vec(id), g.dim);
            if (id == target && d < beam.bound()) return true;
            beam.insert(d, id);
        }
        if (beam.has_next()) g.prefetch_links(beam.next(), level);
    }
    beam.copy_to(s.results);
    return false;
}

}  // namespace

int HnswGraph::random_level() {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const double x = 1.0 - u(level_rng);  // (0, 1]: never log(0)
    const double level = -std::log(x) * level_mult;
    return static_cast<int>(std::min(level, 30.0));
}

void HnswGraph::select_neighbors(std::vector<Candidate>& sorted, std::size_t m) const {
    if (sorted.size() < m) return;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < sorted.size() && kept < m; ++i) {
        const Candidate c = sorted[i];
        const float* cv = vec(c.second);
        bool good = true;
        for (std::size_t j = 0; j < kept; ++j) {
            if (dist(cv, vec(sorted[j].second), dim) < c.first) {
                good = false;
                break;
            }
        }
        if (good) sorted[kept++] = c;
    }
    sorted.resize(kept);
}

void HnswGraph::select_with_added(std::vector<Candidate>& sorted, std::size_t m, std::uint32_t added) const {
    // As select_neighbors, skipping the comparisons whose outcome is known: every candidate but `added`
    // passes against each closer one of them (the settled list), so a candidate before `added` is kept,
    // `added` is tested against those, and a later one only against `added` (when it was kept).
    if (sorted.size() < m) return;  // as select_neighbors: room for every candidate
    const float* av = vec(added);
    std::size_t kept = 0;
    bool after = false;
    bool added_kept = false;
    for (std::size_t i = 0; i < sorted.size() && kept < m; ++i) {
        const Candidate c = sorted[i];
        bool good = true;
        if (c.second == added) {
            after = true;
            for (std::size_t j = 0; j < kept; ++j) {
                if (dist(av, vec(sorted[j].second), dim) < c.first) {
                    good = false;
                    break;
                }
            }
            added_kept = good;
        } else if (after && added_kept) {
            good = !(dist(vec(c.second), av, dim) < c.first);
        }
        if (good) sorted[kept++] = c;
    }
    sorted.resize(kept);
}

std::uint32_t HnswGraph::connect(std::uint32_t slot, std::vector<Candidate>& found, int level) {
    std::sort(found.begin(), found.end());
    select_neighbors(found, params.M);
    const std::uint32_t level_bit = std::uint32_t{1} << level;
    const bool track = !settled.empty();
    {
        locks.lock(slot);
        std::uint32_t* own = links(slot, level);
        own[0] = static_cast<std::uint32_t>(found.size());
        for (std::size_t i = 0; i < found.size(); ++i) own[1 + i] = found[i].second;
        if (track) settled[slot] &= ~level_bit;
        locks.unlock(slot);
    }
    std::vector<Candidate> pruned;
    for (const Candidate& nb : found) offer_link(nb.second, slot, level, pruned);
    return found.empty() ? slot : found.front().second;
}

void HnswGraph::offer_link(std::uint32_t n, std::uint32_t from, int level, std::vector<Candidate>& pruned) {
    const std::size_t cap = max_links(level);
    const std::uint32_t level_bit = std::uint32_t{1} << level;
    const bool track = !settled.empty();
    locks.lock(n);
    std::uint32_t* l = links(n, level);
    const std::uint32_t cnt = l[0];
    bool present = false;
    for (std::uint32_t i = 0; i < cnt && !present; ++i) present = l[1 + i] == from;
    if (!present) {
        if (cnt < cap) {
            l[1 + cnt] = from;
            l[0] = cnt + 1;
            if (track) settled[n] &= ~level_bit;
        } else {
            const float* nv = vec(n);
            pruned.clear();
            pruned.emplace_back(dist(vec(from), nv, dim), from);
            for (std::uint32_t i = 0; i < cnt; ++i) pruned.emplace_back(dist(vec(l[1 + i]), nv, dim), l[1 + i]);
            std::sort(pruned.begin(), pruned.end());
            if (track && (settled[n] & level_bit) != 0) {
                select_with_added(pruned, cap, from);
            } else {
                select_neighbors(pruned, cap);
            }
            l[0] = static_cast<std::uint32_t>(pruned.size());
            for (std::size_t i = 0; i < pruned.size(); ++i) l[1 + i] = pruned[i].second;
            if (track) settled[n] |= level_bit;  // a selection's output: settled
        }
    }
    locks.unlock(n);
}

void HnswGraph::insert(std::uint32_t slot, bool concurrent) {
    const int level = levels[slot];
    std::unique_lock<std::mutex> raise_lock(global);
    const int top = max_level.load(std::memory_order_acquire);
    if (level <= top) raise_lock.unlock();
    std::uint32_t cur = entry.load(std::memory_order_acquire);
    if (top < 0) {  // first node
        entry.store(slot, std::memory_order_release);
        max_level.store(level, std::memory_order_release);
        return;
    }
    const float* q = vec(slot);
    if (level < top) cur = concurrent ? greedy_descent<true>(q, cur, top, level) : greedy_descent<false>(q, cur, top, level);

    detail::ScratchLease lease(scratch_pool);
    Scratch& scratch = *lease;
    std::vector<Candidate> found;
    for (int l = std::min(level, top); l >= 0; --l) {
        // Nothing deleted: the sorted beam (alone, the queries' walk reading link lists in place;
        // beside other inserts, sorted_walk reading each list under its lock). With deleted nodes,
        // the two-heap walk that traverses them without returning them.
        if (num_deleted == 0) {
            if (concurrent) {
                sorted_walk<true>(*this, q, cur, l, params.ef_construction, scratch);
            } else {
                search_layer<false, false>(q, cur, l, params.ef_construction, nullptr, scratch);
            }
        } else if (concurrent) {
            search_layer<true, true>(q, cur, l, params.ef_construction, nullptr, scratch);
        } else {
            search_layer<false, true>(q, cur, l, params.ef_construction, nullptr, scratch);
        }
        found.assign(scratch.results.begin(), scratch.results.end());
        if (found.empty()) found.emplace_back(dist(q, vec(cur), dim), cur);  // a deleted entry point
        cur = connect(slot, found, l);
    }
    if (level > top) {
        entry.store(slot, std::memory_order_release);
        max_level.store(level, std::memory_order_release);
    }
}

}  // namespace quiver::index

namespace quiver::index {

void HnswGraph::consolidate(const std::vector<std::uint8_t>& dead, std::size_t requested_threads) {
    const std::size_t threads = resolve_threads(requested_threads);  // one `gained` list per worker
    // Replacement links. A worker rewrites only its own node's lists and reads only that node's and
    // dead nodes' lists (never rewritten), so the nodes need no locks. The links a node gains are
    // recorded (per node and level) for the reverse links below.
    struct Gain {
        std::uint32_t from, to;
        int level;
    };
    std::vector<std::vector<Gain>> gained(threads);
    {
        ThreadPool pool(threads);
        pool.parallel_for(count, [&](std::size_t i, std::size_t worker) {
            const auto p = static_cast<std::uint32_t>(i);
            if (dead[p]) return;
            thread_local std::vector<std::uint32_t> ids;
            thread_local std::vector<Candidate> cand;
            const float* pv = vec(p);
            for (int l = 0; l <= levels[p]; ++l) {
                std::uint32_t* own = links(p, l);
                bool any = false;
                for (std::uint32_t j = 0; j < own[0] && !any; ++j) any = dead[own[1 + j]] != 0;
                if (!any) continue;
                ids.clear();
                for (std::uint32_t j = 0; j < own[0]; ++j) {
                    const std::uint32_t n = own[1 + j];
                    if (!dead[n]) {
                        ids.push_back(n);
                        continue;
                    }
                    const std::uint32_t* dl = links(n, l);  // a level-l link: n is on level l
                    for (std::uint32_t k = 0; k < dl[0]; ++k) {
                        if (!dead[dl[1 + k]] && dl[1 + k] != p) ids.push_back(dl[1 + k]);
                    }
                }
                std::sort(ids.begin(), ids.end());
                ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
                cand.clear();
                for (const std::uint32_t n : ids) cand.emplace_back(dist(pv, vec(n), dim), n);
                // The nearest ef_construction, as an insert selects among the beam its search returns.
                const std::size_t pool_size = std::min(cand.size(), std::max(params.ef_construction, max_links(l)));
                std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(pool_size), cand.end());
                cand.resize(pool_size);
                select_neighbors(cand, max_links(l));
                const std::size_t keep = std::min(cand.size(), max_links(l));
                for (std::size_t j = 0; j < keep; ++j) {
                    // Gained: not among the old list's links (ids held the live ones, sorted, before the
                    // dead ones' links were added; own is intact until the write below).
                    bool had = false;
                    for (std::uint32_t k = 0; k < own[0] && !had; ++k) had = own[1 + k] == cand[j].second;
                    if (!had) gained[worker].push_back({p, cand[j].second, l});
                }
                own[0] = static_cast<std::uint32_t>(keep);
                for (std::size_t j = 0; j < keep; ++j) own[1 + j] = cand[j].second;
            }
        }, 64);
    }
    // Reverse links, as the build's connect(): a node that gained a link to n offers n a link back
    // (n's list keeps the heuristic's selection when full). Every live list is free of dead nodes now.
    {
        std::vector<Gain> all;
        for (auto& w : gained) all.insert(all.end(), w.begin(), w.end());
        gained.clear();
        ThreadPool pool(threads);
        pool.parallel_for(all.size(), [&](std::size_t i, std::size_t) {
            const auto [p, n, l] = all[i];
            thread_local std::vector<Candidate> pruned;
            offer_link(n, p, l, pruned);
        }, 256);
    }
    // The entry point: kept when live, else the live node on the highest level.
    std::uint32_t ep = entry.load();
    int top = max_level.load();
    if (top >= 0 && dead[ep]) {
        top = -1;
        for (std::uint32_t s = 0; s < count; ++s) {
            if (!dead[s] && levels[s] > top) {
                top = levels[s];
                ep = s;
            }
        }
    }
    // Pack the live slots in order (a slot only moves down, so in-place moves in order are safe).
    constexpr std::uint32_t kGone = std::numeric_limits<std::uint32_t>::max();
    std::vector<std::uint32_t> to(count, kGone);
    std::uint32_t n = 0;
    for (std::uint32_t s = 0; s < count; ++s) {
        if (!dead[s]) to[s] = n++;
    }
    std::vector<std::uint32_t> packed_upper;
    std::vector<std::uint64_t> packed_offset(n, 0);
    for (std::uint32_t s = 0; s < count; ++s) {
        const std::uint32_t t = to[s];
        if (t == kGone) continue;
        packed_offset[t] = packed_upper.size();
        for (int l = 1; l <= levels[s]; ++l) {
            const std::uint32_t* ul = links(s, l);
            packed_upper.push_back(ul[0]);
            for (std::size_t j = 0; j < max_m; ++j) packed_upper.push_back(j < ul[0] ? to[ul[1 + j]] : 0);
        }
        if (t != s) {
            std::memmove(level0 + static_cast<std::size_t>(t) * stride, level0 + static_cast<std::size_t>(s) * stride,
                         stride);
            if (coded()) std::memmove(floats.data() + t * dim, floats.data() + s * dim, dim * sizeof(float));
            if (!code_terms.empty()) code_terms[t] = code_terms[s];
            labels[t] = labels[s];
            levels[t] = levels[s];
        }
        std::uint32_t* l0 = links(t, 0);
        for (std::uint32_t j = 0; j < l0[0]; ++j) l0[1 + j] = to[l0[1 + j]];
    }
    upper = std::move(packed_upper);
    upper_offset = std::move(packed_offset);
    labels.resize(n);
    levels.resize(n);
    deleted.assign(n, 0);
    if (!code_terms.empty()) code_terms.resize(n);
    count = n;
    num_deleted = 0;
    entry.store(top >= 0 ? to[ep] : 0);
    max_level.store(top);
    update_vec_base();
}

std::vector<std::uint8_t> HnswGraph::reachable_from_entry() const {
    std::vector<std::uint8_t> seen(count, 0);
    if (max_level.load() < 0 || count == 0) return seen;
    std::vector<std::uint32_t> stack{entry.load()};
    seen[stack.back()] = 1;
    while (!stack.empty()) {
        const std::uint32_t s = stack.back();
        stack.pop_back();
        const std::uint32_t* l = links(s, 0);
        for (std::uint32_t i = 0; i < l[0]; ++i) {
            const std::uint32_t t = l[1 + i];
            if (!seen[t]) {
                seen[t] = 1;
                stack.push_back(t);
            }
        }
    }
    return seen;
}

void HnswGraph::link_in(std::uint32_t u, const std::vector<Candidate>& nearest,
                        std::vector<std::uint32_t>& in_degree, std::vector<std::uint32_t>* cut) {
    // Among the few nearest (a search for u expands them): prefer one with a free slot; else the
    // nearest whose farthest link targets a node with another in-link (so the replacement cuts
    // nobody off); else the nearest.
    const std::span<const Candidate> near(nearest.data(), std::min<std::size_t>(nearest.size(), 3));
    for (const Candidate& c : near) {
        std::uint32_t* l = links(c.second, 0);
        if (l[0] < max_m0) {
            l[1 + l[0]] = u;
            ++l[0];
            ++in_degree[u];
            return;
        }
    }
    for (int pass = 0; pass < 2; ++pass) {
        for (const Candidate& c : near) {
            std::uint32_t* l = links(c.second, 0);
            const float* cv = vec(c.second);
            std::uint32_t worst = 0;
            float worst_d = -1;
            for (std::uint32_t i = 0; i < l[0]; ++i) {
                const float d = dist(cv, vec(l[1 + i]), dim);
                if (d > worst_d) {
                    worst_d = d;
                    worst = i;
                }
            }
            if (l[0] == 0 || (pass == 0 && in_degree[l[1 + worst]] < 2)) continue;
            --in_degree[l[1 + worst]];
            if (cut != nullptr) cut->push_back(l[1 + worst]);
            l[1 + worst] = u;
            ++in_degree[u];
            return;
        }
    }
}

std::vector<std::uint32_t> HnswGraph::lost_nodes(std::size_t ef, std::size_t threads,
                                                 const std::vector<std::uint32_t>* among) const {
    const int top = max_level.load();
    std::vector<std::vector<std::uint32_t>> per_worker(std::max<std::size_t>(threads, 1));
    ThreadPool pool(threads);
    pool.parallel_for(among ? among->size() : count, [&](std::size_t i, std::size_t worker) {
        const auto u = among ? (*among)[i] : static_cast<std::uint32_t>(i);
        if (deleted[u]) return;
        detail::ScratchLease lease(scratch_pool);
        Scratch& scratch = *lease;
        const float* q = vec(u);
        const std::uint32_t ep = greedy_descent<false>(q, entry.load(), top, 0);
        if (metric != Metric::kInnerProduct) {
            // A node's distance to its own vector is the least there is (0 for L2; for cosine, 0 up
            // to rounding), so once u enters the beam no later candidate can push it out (short of
            // ef exact duplicates): the search stops there instead of running to convergence.
            if (sorted_walk<false>(*this, q, ep, 0, ef, scratch, u)) return;
        } else {
            // Inner product: another vector can beat u's own, so u must survive the whole search.
            search_layer<false, false>(q, ep, 0, ef, nullptr, scratch);
            for (const Candidate& c : scratch.results) {
                if (c.second == u) return;
            }
        }
        per_worker[worker].push_back(u);
    }, 256);
    std::vector<std::uint32_t> lost;
    for (auto& w : per_worker) lost.insert(lost.end(), w.begin(), w.end());
    std::sort(lost.begin(), lost.end());
    return lost;
}

std::size_t HnswGraph::repair_reachability() {
    const int top = max_level.load();
    if (top < 0) return 0;
    std::vector<std::uint8_t> seen = reachable_from_entry();
    std::size_t repaired = 0;
    detail::ScratchLease lease(scratch_pool);
    Scratch& scratch = *lease;
    std::vector<Candidate> found;
    std::vector<std::uint32_t> stack;
    auto mark_from = [&](std::uint32_t start) {  // newly reachable through `start`
        stack.assign(1, start);
        seen[start] = 1;
        while (!stack.empty()) {
            const std::uint32_t s = stack.back();
            stack.pop_back();
            const std::uint32_t* l = links(s, 0);
            for (std::uint32_t i = 0; i < l[0]; ++i) {
                if (!seen[l[1 + i]]) {
                    seen[l[1 + i]] = 1;
                    stack.push_back(l[1 + i]);
                }
            }
        }
    };
    // A few rounds: replacing a full list's farthest link can cut another node off, which the
    // next round's fresh traversal finds (the in-degree preference makes that rare).
    for (int round = 0; round < 8; ++round) {
        std::vector<std::uint32_t> in_degree(count, 0);
        for (std::uint32_t s = 0; s < count; ++s) {
            const std::uint32_t* l = links(s, 0);
            for (std::uint32_t i = 0; i < l[0]; ++i) ++in_degree[l[1 + i]];
        }
        bool any = false;
        for (std::uint32_t u = 0; u < count; ++u) {
            if (seen[u] || deleted[u]) continue;
            any = true;
            const float* q = vec(u);
            const std::uint32_t ep = greedy_descent<false>(q, entry.load(), top, 0);
            search_layer<false, false>(q, ep, 0, params.ef_construction, nullptr, scratch);
            found.assign(scratch.results.begin(), scratch.results.end());
            std::sort(found.begin(), found.end());
            std::erase_if(found, [&](const Candidate& c) { return c.second == u || !seen[c.second]; });
            if (found.empty()) found.emplace_back(dist(q, vec(entry.load()), dim), entry.load());
            link_in(u, found, in_degree);
            ++repaired;
            mark_from(u);
        }
        if (!any) break;
        seen = reachable_from_entry();
    }

    // Reachable is not enough: a node whose only in-links come from far-away nodes is missed by a
    // beam search for its own vector. Every live node is searched for with a narrow beam; a node
    // not found gets in-links from the nearest nodes that search found. The later rounds search again
    // only for what the previous round's repairs may have cut off: the nodes it repaired and those
    // whose in-link a repair took (link_in replacing a full list's farthest link); every other node
    // was found and kept its in-links.
    const std::size_t ef_check = std::max<std::size_t>(32, max_m0);
    std::vector<std::uint32_t> recheck;
    for (int round = 0; round < 4; ++round) {
        const std::vector<std::uint32_t> lost =
            lost_nodes(ef_check, resolve_threads(params.threads), round == 0 ? nullptr : &recheck);
        if (lost.empty()) break;
        recheck = lost;
        std::vector<std::uint32_t> in_degree(count, 0);
        for (std::uint32_t s = 0; s < count; ++s) {
            const std::uint32_t* l = links(s, 0);
            for (std::uint32_t i = 0; i < l[0]; ++i) ++in_degree[l[1 + i]];
        }
        for (std::uint32_t u : lost) {
            const float* q = vec(u);
            const std::uint32_t ep = greedy_descent<false>(q, entry.load(), top, 0);
            // The same narrow search that missed u: the nodes it returns are the ones it expanded,
            // so an in-link from them puts u in its path.
            search_layer<false, false>(q, ep, 0, ef_check, nullptr, scratch);
            found.assign(scratch.results.begin(), scratch.results.end());
            std::sort(found.begin(), found.end());
            std::erase_if(found, [&](const Candidate& c) { return c.second == u; });
            // In-links from the two nearest nodes found (each a full list may give up its farthest).
            for (std::size_t j = 0; j < std::min<std::size_t>(2, found.size()); ++j) {
                const std::uint32_t* l = links(found[j].second, 0);
                bool present = false;
                for (std::uint32_t i = 0; i < l[0] && !present; ++i) present = l[1 + i] == u;
                if (!present) {
                    link_in(u, std::vector<Candidate>(found.begin() + static_cast<long>(j), found.end()), in_degree,
                            &recheck);
                }
            }
            ++repaired;
        }
        std::sort(recheck.begin(), recheck.end());
        recheck.erase(std::unique(recheck.begin(), recheck.end()), recheck.end());
    }
    return repaired;
}

}  // namespace quiver::index
