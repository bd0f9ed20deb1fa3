// HNSW construction: level draw, insertion, heuristic neighbour selection, reverse-link repair.
#include <algorithm>
#include <cmath>

#include "index/hnsw/hnsw_graph.h"

namespace quiver::index {

using detail::Candidate;

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

std::uint32_t HnswGraph::connect(std::uint32_t slot, std::vector<Candidate>& found, int level) {
    std::sort(found.begin(), found.end());
    select_neighbors(found, params.M);
    const std::size_t cap = max_links(level);
    {
        locks.lock(slot);
        std::uint32_t* own = links(slot, level);
        own[0] = static_cast<std::uint32_t>(found.size());
        for (std::size_t i = 0; i < found.size(); ++i) own[1 + i] = found[i].second;
        locks.unlock(slot);
    }
    const float* sv = vec(slot);
    std::vector<Candidate> pruned;
    for (const Candidate& nb : found) {
        const std::uint32_t n = nb.second;
        locks.lock(n);
        std::uint32_t* l = links(n, level);
        const std::uint32_t cnt = l[0];
        bool present = false;
        for (std::uint32_t i = 0; i < cnt && !present; ++i) present = l[1 + i] == slot;
        if (!present) {
            if (cnt < cap) {
                l[1 + cnt] = slot;
                l[0] = cnt + 1;
            } else {
                const float* nv = vec(n);
                pruned.clear();
                pruned.emplace_back(dist(sv, nv, dim), slot);
                for (std::uint32_t i = 0; i < cnt; ++i) pruned.emplace_back(dist(vec(l[1 + i]), nv, dim), l[1 + i]);
                std::sort(pruned.begin(), pruned.end());
                select_neighbors(pruned, cap);
                l[0] = static_cast<std::uint32_t>(pruned.size());
                for (std::size_t i = 0; i < pruned.size(); ++i) l[1 + i] = pruned[i].second;
            }
        }
        locks.unlock(n);
    }
    return found.empty() ? slot : found.front().second;
}

void HnswGraph::insert(std::uint32_t slot) {
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
    if (level < top) cur = greedy_descent<true>(q, cur, top, level);

    detail::ScratchLease lease(scratch_pool);
    Scratch& scratch = *lease;
    std::vector<Candidate> found;
    for (int l = std::min(level, top); l >= 0; --l) {
        if (num_deleted == 0) {
            search_layer<true, false>(q, cur, l, params.ef_construction, nullptr, scratch);
        } else {
            search_layer<true, true>(q, cur, l, params.ef_construction, nullptr, scratch);
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
