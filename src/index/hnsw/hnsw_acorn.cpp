// ACORN over an HNSW graph (ACORN-1 on its level-0 lists, ACORN-γ on denser lists built once) and the
// exact scan of a matching set. See quiver/index/filtered_search.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "index/hnsw/hnsw_graph.h"
#include "quiver/core/thread_pool.h"
#include "quiver/index/filtered_search.h"
#include "quiver/storage/file_format.h"

namespace quiver::index {
namespace {

using detail::Candidate;

constexpr std::uint32_t kAcornKind = storage::fourcc("ACRN");
constexpr std::uint32_t kAcornVersion = 1;

struct MinFirst {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept { return a.first > b.first; }
};
struct MaxFirst {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept { return a.first < b.first; }
};

// The live slots whose labels are allowed, as a dense bitset over slots: one bit test per node in
// the walks (instead of a compressed-bitmap lookup per label). Built in O(matches + slots / 64).
class SlotSet {
public:
    SlotSet(const HnswGraph& g, const Bitmap& allowed) : words_((g.count + 63) / 64, 0) {
        allowed.for_each([&](std::uint32_t label) {
            std::uint32_t slot = label;
            if (!(label < g.count && to_int(g.labels[label]) == label && g.deleted[label] == 0)) {
                const auto it = g.slot_of.find(label);
                if (it == g.slot_of.end() || g.deleted[it->second] != 0) return;
                slot = it->second;
            }
            words_[slot >> 6] |= std::uint64_t{1} << (slot & 63);
            ++count_;
        });
    }
    bool test(std::uint32_t slot) const noexcept { return (words_[slot >> 6] >> (slot & 63)) & 1; }
    std::uint64_t count() const noexcept { return count_; }
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (std::size_t w = 0; w < words_.size(); ++w) {
            for (std::uint64_t bits = words_[w]; bits != 0; bits &= bits - 1) {
                fn(static_cast<std::uint32_t>(w * 64 + static_cast<std::size_t>(__builtin_ctzll(bits))));
            }
        }
    }

private:
    std::vector<std::uint64_t> words_;
    std::uint64_t count_ = 0;
};

std::vector<float> prepared_query(const HnswGraph& g, std::span<const float> query) {
    std::vector<float> q(query.begin(), query.end());
    if (g.metric == Metric::kCosine) simd::normalize(q.data(), q.size());
    return q;
}

std::vector<Neighbor> to_neighbors(const HnswGraph& g, std::vector<Candidate>& found, std::size_t k) {
    std::sort(found.begin(), found.end(), [&](const Candidate& a, const Candidate& b) {
        if (a.first != b.first) return a.first < b.first;
        return to_int(g.labels[a.second]) < to_int(g.labels[b.second]);
    });
    std::vector<Neighbor> out;
    for (std::size_t i = 0; i < std::min(k, found.size()); ++i) out.push_back({g.labels[found[i].second], found[i].first});
    return out;
}

// ACORN's upper levels: greedy, moving only to matching neighbours; a matching node replaces a
// non-matching current one whatever its distance. Returns a matching slot when one was reached.
std::uint32_t filtered_descent(const HnswGraph& g, const float* q, const SlotSet& pass, int top_level,
                               bool* reached) {
    std::uint32_t cur = g.entry.load(std::memory_order_acquire);
    bool cur_pass = pass.test(cur);
    float cur_d = g.dist(q, g.vec(cur), g.dim);
    for (int level = top_level; level > 0; --level) {
        for (bool changed = true; changed;) {
            changed = false;
            const std::uint32_t* l = g.links(cur, level);
            for (std::uint32_t i = 0; i < l[0]; ++i) {
                const std::uint32_t c = l[1 + i];
                if (!pass.test(c)) continue;
                const float d = g.dist(q, g.vec(c), g.dim);
                if (!cur_pass || d < cur_d) {
                    cur = c;
                    cur_d = d;
                    cur_pass = true;
                    changed = true;
                }
            }
        }
    }
    *reached = cur_pass;
    return cur;
}

// Level-0 ACORN beam from `eps` (the descent's node and matching seeds spread over the slots, so a
// matching region far from the query's is reached); leaves up to ef matching results (max-heap) in
// s.results.
void acorn_layer0(const HnswGraph& g, const AcornGraph* gamma, const float* q, std::span<const std::uint32_t> eps,
                  std::size_t ef, const SlotSet& pass, detail::SearchScratch& s) {
    auto& visited = s.visited;
    visited.next();
    auto& cand = s.candidates;
    auto& top = s.results;
    cand.clear();
    top.clear();
    float lower = std::numeric_limits<float>::infinity();
    for (const std::uint32_t ep : eps) {
        if (visited.test_and_mark(ep)) continue;
        const float d0 = g.dist(q, g.vec(ep), g.dim);
        cand.emplace_back(d0, ep);
        std::push_heap(cand.begin(), cand.end(), MinFirst{});
        if (pass.test(ep)) {
            top.emplace_back(d0, ep);
            std::push_heap(top.begin(), top.end(), MaxFirst{});
        }
    }
    while (top.size() > ef) {
        std::pop_heap(top.begin(), top.end(), MaxFirst{});
        top.pop_back();
    }
    if (!top.empty()) lower = top.front().first;
    // Matching neighbours gathered per expansion: "truncate to M" of the paper, with level-0 M = 2M.
    const std::size_t limit = g.max_m0;
    const std::size_t m_beta = gamma != nullptr ? gamma->m_beta() : 0;
    std::vector<std::uint32_t> found(limit);
    auto list_of = [&](std::uint32_t slot) -> std::span<const std::uint32_t> {
        if (gamma != nullptr) return gamma->neighbors(slot);
        const std::uint32_t* l = g.links(slot, 0);
        return {l + 1, l + 1 + l[0]};
    };
    while (!cand.empty()) {
        const Candidate c = cand.front();
        if (c.first > lower && top.size() >= ef) break;
        std::pop_heap(cand.begin(), cand.end(), MinFirst{});
        cand.pop_back();
        const auto list = list_of(c.second);
        std::size_t m = 0;
        // Direct neighbours first (all of the uncompressed prefix; ACORN-1 has none), then the
        // compressed region: each entry and its own neighbours (two hops), until `limit` matches.
        for (std::size_t i = 0; i < list.size() && m < limit; ++i) {
            const std::uint32_t nb = list[i];
            if (pass.test(nb) && !visited.test_and_mark(nb)) found[m++] = nb;
        }
        for (std::size_t i = m_beta; i < list.size() && m < limit; ++i) {
            for (const std::uint32_t nn : list_of(list[i])) {
                if (pass.test(nn) && !visited.test_and_mark(nn)) {
                    found[m++] = nn;
                    if (m == limit) break;
                }
            }
        }
        for (std::size_t j = 0; j < std::min<std::size_t>(m, 2); ++j) g.prefetch_float(found[j]);
        for (std::size_t j = 0; j < m; ++j) {
            if (j + 2 < m) g.prefetch_float(found[j + 2]);
            const std::uint32_t id = found[j];
            const float d = g.dist(q, g.vec(id), g.dim);
            if (top.size() < ef || d < lower) {
                cand.emplace_back(d, id);
                std::push_heap(cand.begin(), cand.end(), MinFirst{});
                top.emplace_back(d, id);
                std::push_heap(top.begin(), top.end(), MaxFirst{});
                if (top.size() > ef) {
                    std::pop_heap(top.begin(), top.end(), MaxFirst{});
                    top.pop_back();
                }
                lower = top.front().first;
            }
        }
    }
}

}  // namespace

std::vector<Neighbor> hnsw_exact_scan(const HnswIndex& hnsw, std::span<const float> query, const Bitmap& allowed,
                                      std::size_t k) {
    const HnswGraph& g = hnsw.graph();
    if (k == 0 || g.count == 0) return {};
    const std::vector<float> q = prepared_query(g, query);
    std::vector<Candidate> heap;  // max-heap of the best k (distance, slot)
    heap.reserve(k + 1);
    auto consider = [&](std::uint32_t slot) {
        const float d = g.dist(q.data(), g.vec(slot), g.dim);
        if (heap.size() < k) {
            heap.emplace_back(d, slot);
            std::push_heap(heap.begin(), heap.end(), MaxFirst{});
        } else if (d < heap.front().first ||
                   (d == heap.front().first && to_int(g.labels[slot]) < to_int(g.labels[heap.front().second]))) {
            std::pop_heap(heap.begin(), heap.end(), MaxFirst{});
            heap.back() = {d, slot};
            std::push_heap(heap.begin(), heap.end(), MaxFirst{});
        }
    };
    for_each_allowed_slot(g, allowed, consider);
    return to_neighbors(g, heap, k);
}

std::vector<Neighbor> hnsw_acorn_search(const HnswIndex& hnsw, const AcornGraph* gamma, std::span<const float> query,
                                        const Bitmap& allowed, std::size_t k, std::size_t ef) {
    const HnswGraph& g = hnsw.graph();
    const int top_level = g.max_level.load(std::memory_order_acquire);
    if (k == 0 || top_level < 0) return {};
    if (gamma != nullptr && gamma->nodes() != g.count) gamma = nullptr;  // stale lists: ACORN-1
    const SlotSet pass(g, allowed);
    if (pass.count() == 0) return {};
    const std::vector<float> q = prepared_query(g, query);
    ef = std::max(ef == 0 ? std::size_t{64} : ef, k);
    bool reached = false;
    std::uint32_t ep = filtered_descent(g, q.data(), pass, top_level, &reached);
    if (!reached) ep = g.greedy_descent<false>(q.data(), g.entry.load(std::memory_order_acquire), top_level, 0);
    // Seeds: up to kSeeds matching slots probed at a fixed stride (golden ratio) over all slots.
    constexpr std::size_t kSeeds = 16;
    constexpr std::size_t kProbes = 1024;
    std::vector<std::uint32_t> eps = {ep};
    const std::uint64_t stride = static_cast<std::uint64_t>(0.6180339887 * static_cast<double>(g.count)) | 1;
    std::uint64_t at = 0;
    for (std::size_t p = 0; p < kProbes && eps.size() <= kSeeds; ++p) {
        at = (at + stride) % g.count;
        if (pass.test(static_cast<std::uint32_t>(at))) eps.push_back(static_cast<std::uint32_t>(at));
    }
    detail::ScratchLease lease(g.scratch_pool);
    acorn_layer0(g, gamma, q.data(), eps, ef, pass, *lease);
    std::vector<Candidate> found = (*lease).results;
    return to_neighbors(g, found, k);
}

// ---- ACORN-γ lists ----------------------------------------------------------------------------

Result<AcornGraph> AcornGraph::build(const HnswIndex& hnsw, const AcornParams& params) {
    if (params.gamma == 0 || params.gamma > 64) return invalid_argument("ACORN gamma must be 1..64");
    QUIVER_TRY(hnsw.verify());  // reads the level-0 links of an opened file
    const HnswGraph& g = hnsw.graph();
    const std::size_t m = g.params.M;
    const std::size_t width = m * params.gamma;  // list length before compression
    const std::size_t m_beta = std::min(width, params.m_beta == 0 ? 2 * m : params.m_beta);
    const std::size_t n = g.count;
    std::vector<std::vector<std::uint32_t>> lists(n);
    ThreadPool pool(params.threads);
    struct Work {
        std::vector<std::uint8_t> seen;
        std::vector<std::uint32_t> touched;
        std::vector<Candidate> cands;
        std::vector<std::uint8_t> covered;  // reachable in two hops from a kept node
        std::vector<std::uint32_t> covered_list;
    };
    std::vector<Work> work(pool.size());
    for (auto& w : work) {
        w.seen.assign(n, 0);
        w.covered.assign(n, 0);
    }
    pool.parallel_for(
        n,
        [&](std::size_t i, std::size_t worker) {
            const auto v = static_cast<std::uint32_t>(i);
            if (g.deleted[v] != 0) return;
            Work& w = work[worker];
            w.touched.clear();
            w.cands.clear();
            auto add = [&](std::uint32_t c) {
                if (c == v || w.seen[c] != 0 || g.deleted[c] != 0) return;
                w.seen[c] = 1;
                w.touched.push_back(c);
                w.cands.emplace_back(g.dist(g.vec(v), g.vec(c), g.dim), c);
            };
            const std::uint32_t* l = g.links(v, 0);
            for (std::uint32_t a = 0; a < l[0]; ++a) {
                add(l[1 + a]);
                const std::uint32_t* l2 = g.links(l[1 + a], 0);
                for (std::uint32_t b = 0; b < l2[0]; ++b) add(l2[1 + b]);
            }
            for (std::uint32_t c : w.touched) w.seen[c] = 0;
            const std::size_t keep = std::min(width, w.cands.size());
            std::partial_sort(w.cands.begin(), w.cands.begin() + static_cast<std::ptrdiff_t>(keep), w.cands.end());
            // The node's own HNSW links come first (pruned for diversity, they keep the graph
            // navigable), then the nearest candidates, unpruned; past m_beta a candidate that a kept
            // entry reaches in one more hop is dropped (search expands that region two hops).
            std::vector<std::uint32_t>& out = lists[i];
            w.covered_list.clear();
            auto cover = [&](std::uint32_t id) {
                const std::uint32_t* nl = g.links(id, 0);
                for (std::uint32_t b = 0; b < nl[0]; ++b) {
                    if (w.covered[nl[1 + b]] == 0) {
                        w.covered[nl[1 + b]] = 1;
                        w.covered_list.push_back(nl[1 + b]);
                    }
                }
            };
            for (std::uint32_t a = 0; a < l[0]; ++a) {
                if (g.deleted[l[1 + a]] != 0) continue;
                out.push_back(l[1 + a]);
                w.seen[l[1 + a]] = 1;
                if (out.size() > m_beta) cover(l[1 + a]);
            }
            for (std::size_t c = 0; c < keep && out.size() < width; ++c) {
                const std::uint32_t id = w.cands[c].second;
                if (w.seen[id] != 0) continue;  // an HNSW link, already in
                if (out.size() >= m_beta && w.covered[id] != 0) continue;  // reached in two hops
                out.push_back(id);
                if (out.size() > m_beta) cover(id);
            }
            for (std::uint32_t a = 0; a < l[0]; ++a) w.seen[l[1 + a]] = 0;
            for (std::uint32_t c : w.covered_list) w.covered[c] = 0;
        },
        64);
    AcornGraph out;
    out.gamma_ = params.gamma;
    out.m_beta_ = m_beta;
    out.offsets_.reserve(n + 1);
    out.offsets_.push_back(0);
    for (auto& l : lists) {
        out.links_.insert(out.links_.end(), l.begin(), l.end());
        out.offsets_.push_back(out.links_.size());
        std::vector<std::uint32_t>().swap(l);
    }
    return out;
}

Status AcornGraph::save(const std::string& path) const {
    QUIVER_ASSIGN_OR_RETURN(auto w, storage::FileWriter::create(path, kAcornKind, kAcornVersion));
    const std::uint64_t header[4] = {nodes(), gamma_, m_beta_, links_.size()};
    QUIVER_TRY(w.write(header, sizeof(header)));
    QUIVER_TRY(w.write(offsets_.data(), offsets_.size() * sizeof(std::uint64_t)));
    QUIVER_TRY(w.write(links_.data(), links_.size() * sizeof(std::uint32_t)));
    return w.finish();
}

Result<AcornGraph> AcornGraph::open(const std::string& path, const HnswIndex& hnsw) {
    auto file = storage::MappedFile::open(path);
    if (!file) return data_loss("ACORN lists '" + path + "': " + file.error().message());
    auto reader = storage::open_payload(*file, kAcornKind, kAcornVersion);
    if (!reader) return Error(reader.error().code(), "ACORN lists '" + path + "': " + reader.error().message());
    std::uint64_t header[4];
    if (reader->remaining() < sizeof(header)) return data_loss("ACORN lists '" + path + "': truncated");
    QUIVER_ASSIGN_OR_RETURN(auto h, reader->read_span<std::uint64_t>(4));
    std::memcpy(header, h.data(), sizeof(header));
    const HnswGraph& g = hnsw.graph();
    const std::uint64_t n = header[0];
    if (n != g.count || header[1] == 0 || header[1] > 64 || header[2] > header[1] * g.params.M ||
        reader->remaining() != (n + 1) * 8 + header[3] * 4) {
        return data_loss("ACORN lists '" + path + "' do not fit the index");
    }
    AcornGraph out;
    out.gamma_ = header[1];
    out.m_beta_ = header[2];
    QUIVER_ASSIGN_OR_RETURN(auto offs, reader->read_span<std::uint64_t>(n + 1));
    out.offsets_.assign(offs.begin(), offs.end());
    QUIVER_ASSIGN_OR_RETURN(auto links, reader->read_span<std::uint32_t>(header[3]));
    out.links_.assign(links.begin(), links.end());
    if (out.offsets_[0] != 0 || out.offsets_.back() != header[3]) return data_loss("ACORN lists '" + path + "': offsets");
    for (std::uint64_t i = 0; i < n; ++i) {
        if (out.offsets_[i + 1] < out.offsets_[i] || out.offsets_[i + 1] - out.offsets_[i] > header[1] * g.params.M) {
            return data_loss("ACORN lists '" + path + "': offsets");
        }
    }
    for (std::uint32_t l : out.links_) {
        if (l >= n) return data_loss("ACORN lists '" + path + "': link out of range");
    }
    return out;
}

}  // namespace quiver::index
