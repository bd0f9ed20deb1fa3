// Private to index/hnsw: the graph state and algorithms behind HnswIndex.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "index/hnsw/scratch.h"
#include "quiver/index/codec.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/storage/file_format.h"

namespace quiver::index {

namespace detail {

/// One byte per node; contention is rare (a node's list is locked only while copied or rewritten).
/// A waiter spins briefly, then yields its core: on a host with more runnable threads than cores
/// (index builds beside request threads in a server) the holder may have been preempted, and spinning
/// until it runs again burnt the waiter's whole time slice (a merge's concurrent inserts spent about
/// a tenth of their walk in the spin loop under 16 writing connections on 2 cores).
class SpinLocks {
public:
    void resize(std::size_t n) {
        locks_ = std::make_unique<std::atomic<std::uint8_t>[]>(n);
        for (std::size_t i = 0; i < n; ++i) locks_[i].store(0, std::memory_order_relaxed);
        n_ = n;
    }
    void lock(std::uint32_t i) noexcept {
        while (locks_[i].exchange(1, std::memory_order_acquire) != 0) {
            for (int spins = 0; locks_[i].load(std::memory_order_relaxed) != 0; ++spins) {
                if (spins >= kSpinsBeforeYield) {
                    std::this_thread::yield();
                    spins = 0;
                }
#if defined(__x86_64__)
                __builtin_ia32_pause();
#endif
            }
        }
    }
    void unlock(std::uint32_t i) noexcept { locks_[i].store(0, std::memory_order_release); }
    std::size_t size() const noexcept { return n_; }

private:
    static constexpr int kSpinsBeforeYield = 64;
    std::unique_ptr<std::atomic<std::uint8_t>[]> locks_;
    std::size_t n_ = 0;
};

/// A file descriptor closed on destruction (hnsw_io.cpp).
struct OwnedFd {
    explicit OwnedFd(int f) : fd(f) {}
    ~OwnedFd();
    OwnedFd(const OwnedFd&) = delete;
    OwnedFd& operator=(const OwnedFd&) = delete;
    int fd;
};

struct FreeDeleter {
    void operator()(std::byte* p) const noexcept { std::free(p); }
};

}  // namespace detail

struct HnswGraph {
    // Configuration (fixed at creation).
    std::size_t dim = 0;
    Metric metric = Metric::kL2;
    simd::DistanceFn dist = nullptr;
    HnswParams params;
    std::size_t max_m = 0;   // links per node on levels >= 1
    std::size_t max_m0 = 0;  // links per node on level 0
    double level_mult = 0;
    std::size_t vector_bytes = 0;  // bytes of a record's payload: dim * 4, or the code size when coded
    std::size_t stride = 0;        // bytes per level-0 record
    std::size_t upper_block = 0;   // u32 words per upper level of a node: 1 + max_m

    // Codes (coded graphs only): the codec, and the float32 vectors kept beside the records.
    std::unique_ptr<Codec> codec;
    std::vector<float> floats;  // slot x dim, when coded
    // Integer walk (a codec with Codec::int8_query, i.e. SQ8): the exact u8 x s8 kernels (single and
    // batched) of the active SIMD level (VNNI where present), and per slot the codec's code_term when it has one (L2),
    // computed at add and open (not saved).
    bool int_walk = false;
    std::int32_t (*u8s8_dot)(const std::uint8_t*, const std::int8_t*, std::size_t) noexcept = nullptr;
    void (*u8s8_dot_batch)(const std::uint8_t* const*, std::size_t, const std::int8_t*, std::size_t,
                           std::int32_t*) noexcept = nullptr;
    std::vector<float> code_terms;
    // Where vec(s) reads: the level-0 records (payload at offset 0), or `floats` when coded.
    const std::byte* vec_base = nullptr;
    std::size_t vec_stride = 0;
    // Vectors on disk (coded graphs opened with HnswOpenOptions::vectors_on_disk): read with
    // pread at `disk_offset + slot * dim * 4` of `disk_fd`; vec_base is then null.
    std::shared_ptr<const detail::OwnedFd> disk_fd;
    std::uint64_t disk_offset = 0;
    bool on_disk() const noexcept { return disk_fd != nullptr; }
    /// Reads the float32 vector of slot s into out (dim floats): from memory or with pread.
    bool read_vector(std::uint32_t s, float* out) const noexcept;

    // Level-0 records, owned or mapped.
    std::unique_ptr<std::byte, detail::FreeDeleter> owned;
    std::shared_ptr<storage::MappedFile> mapping;
    // An opened file's checks deferred to first use (hnsw_io.cpp): the level-0 and vector sections'
    // CRCs, the level-0 links, code_terms. Null for a built index. HnswIndex::verify() runs it.
    std::unique_ptr<storage::DeferredCheck> deferred;
    std::byte* level0 = nullptr;
    std::size_t capacity = 0;
    std::size_t count = 0;  // slots in use

    std::vector<Label> labels;            // per slot
    std::vector<std::uint8_t> levels;     // per slot
    std::vector<std::uint8_t> deleted;    // per slot
    std::vector<std::uint64_t> upper_offset;  // per slot: first u32 of its level-1 block in `upper`
    std::vector<std::uint32_t> upper;     // upper-level blocks: [count][max_m links] per level
    std::unordered_map<std::uint64_t, std::uint32_t> slot_of;  // live label -> slot
    std::size_t num_deleted = 0;
    std::size_t unchecked_inserts = 0;  // nodes inserted (or every node, after a drop) since the last reachability check
    // During HnswIndex::add only (empty otherwise): per slot, bit l set when its level-l list is the
    // output of a select_neighbors over candidates sorted by their distance to it (so each link passes
    // the heuristic against every closer link), written under the slot's lock. Lets connect() prune a
    // full list with select_with_added instead of re-running the whole heuristic.
    std::vector<std::uint32_t> settled;

    std::atomic<std::uint32_t> entry{0};
    std::atomic<int> max_level{-1};
    std::mutex global;  // held by an insert that raises max_level
    mutable detail::SpinLocks locks;
    mutable detail::ScratchPool scratch_pool;
    std::mt19937_64 level_rng;

    // --- layout accessors -------------------------------------------------------------------
    bool coded() const noexcept { return codec != nullptr; }
    /// The float32 vector of slot s (normalised for cosine).
    const float* vec(std::uint32_t s) const noexcept {
        return reinterpret_cast<const float*>(vec_base + s * vec_stride);
    }
    /// The record payload of slot s: the vector, or the code when coded.
    const std::uint8_t* code(std::uint32_t s) const noexcept {
        return reinterpret_cast<const std::uint8_t*>(level0 + s * stride);
    }
    std::byte* payload_mut(std::uint32_t s) noexcept { return level0 + s * stride; }
    /// Points vec_base at the vectors' current storage (after any reallocation).
    void update_vec_base() noexcept {
        if (coded()) {
            vec_base = reinterpret_cast<const std::byte*>(floats.data());
            vec_stride = dim * sizeof(float);
        } else {
            vec_base = level0;
            vec_stride = stride;
        }
    }
    /// [count, link_0, ..., link_{cap-1}] of slot s at `level`.
    std::uint32_t* links(std::uint32_t s, int level) noexcept {
        if (level == 0) return reinterpret_cast<std::uint32_t*>(level0 + s * stride + vector_bytes);
        return upper.data() + upper_offset[s] + static_cast<std::size_t>(level - 1) * upper_block;
    }
    const std::uint32_t* links(std::uint32_t s, int level) const noexcept {
        return const_cast<HnswGraph*>(this)->links(s, level);
    }
    std::size_t max_links(int level) const noexcept { return level == 0 ? max_m0 : max_m; }
    /// Float32 vectors of at most kSmallVectorBytes (up to 64 dimensions, at most 5 cache lines, as a
    /// code): the unlocked walks request every unvisited neighbour's vector at once (prefetch_float) and
    /// then score the list, instead of a lookahead of two (hnsw_search.cpp).
    static constexpr std::size_t kSmallVectorBytes = 256;
    bool small_vectors() const noexcept { return dim * sizeof(float) <= kSmallVectorBytes; }
    /// Prefetches every cache line of slot s's float32 vector (wherever vec() reads it: the level-0
    /// record, or `floats` beside a coded graph's records; lines from the 64-byte boundary below it).
    void prefetch_float(std::uint32_t s) const noexcept {
        const auto p = reinterpret_cast<std::uintptr_t>(vec(s));
        for (std::uintptr_t a = p & ~std::uintptr_t{63}; a < p + dim * sizeof(float); a += 64) {
            __builtin_prefetch(reinterpret_cast<const void*>(a), 0, 3);
        }
    }
    /// Prefetches a coded record's payload for a walk that requests every neighbour's code at once:
    /// one line per 128-byte-aligned pair of lines the code touches (its first line in the pair), the
    /// other line of the pair left to the L2 spatial prefetcher. A GloVe SQ8 code (100 bytes at the
    /// start of a 256-byte record) is one request instead of two, so a list of 15 unvisited neighbours
    /// fits the core's line-fill buffers in one round (measured: +3-9% QPS on the SQ8 walk; the float
    /// walk's lookahead of two records gained nothing from the same rule).
    /// Without a branch on the code's offset for codes of up to two pairs (whether a SIFT code at a
    /// 288-byte stride crosses a pair boundary alternates from node to node, so a loop over the pairs
    /// mispredicted its exit): the first pair's request at the code's start, the last pair's at its
    /// start (the code's start again when the code sits in one pair), and a loop only over pairs in
    /// between (none for codes of up to 129 bytes).
    void prefetch_code(std::uint32_t s) const noexcept {
        const auto p = reinterpret_cast<std::uintptr_t>(level0 + s * stride);
        const std::uintptr_t last_pair = (p + vector_bytes - 1) & ~std::uintptr_t{127};
        __builtin_prefetch(reinterpret_cast<const void*>(p), 0, 3);
        for (std::uintptr_t a = (p | 127) + 1; a < last_pair; a += 128) {
            __builtin_prefetch(reinterpret_cast<const void*>(a), 0, 3);
        }
        __builtin_prefetch(reinterpret_cast<const void*>(last_pair > p ? last_pair : p), 0, 3);
    }
    /// Prefetches the cache lines of slot s's link list at `level` (count and every link slot).
    void prefetch_links(std::uint32_t s, int level) const noexcept {
        const auto p = reinterpret_cast<std::uintptr_t>(links(s, level));
        const std::uintptr_t end = p + (1 + max_links(level)) * sizeof(std::uint32_t);
        for (std::uintptr_t a = p & ~std::uintptr_t{63}; a < end; a += 64) {
            __builtin_prefetch(reinterpret_cast<const void*>(a), 0, 3);
        }
    }
    /// Fills code_terms for slots [from, count) (codecs with Codec::has_code_term).
    void compute_code_terms(std::size_t from);

    // --- hnsw_index.cpp ---------------------------------------------------------------------
    /// kInvalidArgument for a codec the dimension cannot take.
    Status init(std::size_t dim, Metric metric, const HnswParams& params);
    /// Grows level-0 storage and side arrays to hold `needed` slots (single-threaded).
    void reserve(std::size_t needed);
    /// Reads vectors left on disk into `floats` (before any mutation).
    Status load_vectors();
    /// Copies a mapped level-0 array into owned memory.
    void materialize();
    std::size_t memory_bytes() const;

    // --- hnsw_build.cpp ---------------------------------------------------------------------
    int random_level();
    /// Links slot (vector, level and upper blocks already in place) into the graph. With `concurrent`,
    /// thread-safe against other insert() calls (its walks copy link lists under their locks); without,
    /// the only thread touching the graph.
    void insert(std::uint32_t slot, bool concurrent = true);
    /// hnswlib's getNeighborsByHeuristic2 over candidates sorted ascending by distance to the base.
    void select_neighbors(std::vector<detail::Candidate>& sorted, std::size_t m) const;
    /// select_neighbors(sorted, m) for a settled list (see `settled`) plus the candidate `added`: the
    /// same result, computing only the distances that involve `added`.
    void select_with_added(std::vector<detail::Candidate>& sorted, std::size_t m, std::uint32_t added) const;
    std::uint32_t connect(std::uint32_t slot, std::vector<detail::Candidate>& found, int level);
    /// Offers n a link to `from` at `level` (thread-safe, under n's lock): appended when n's list has
    /// room, else n keeps the heuristic's selection among its links and `from`. `pruned` is scratch.
    void offer_link(std::uint32_t n, std::uint32_t from, int level, std::vector<detail::Candidate>& pruned);
    /// Removes the nodes flagged in `dead` (per slot; tombstones must be flagged too) for good: every live
    /// node with a dead neighbour on a level takes as candidates its live neighbours and the dead
    /// neighbours' live neighbours there (FreshDiskANN's delete consolidation) and keeps the build's
    /// heuristic selection of the nearest ef_construction of them (as an insert selects from its beam);
    /// each link gained is offered back as the build's connect() does; then the live slots are packed
    /// in order (labels kept, slot_of and the reachability repair left to the caller). `threads`
    /// workers (0 = all cores). Needs an owned level-0 array and the vectors in memory.
    void consolidate(const std::vector<std::uint8_t>& dead, std::size_t threads);
    /// Level-0 nodes reachable from the entry point (breadth-first over level-0 links), as flags.
    std::vector<std::uint8_t> reachable_from_entry() const;
    /// Finds live nodes no search can reach (no level-0 path from the entry point) and gives each
    /// an in-link from its nearest reachable node. Single-threaded. Returns the nodes repaired.
    std::size_t repair_reachability();
    /// Live nodes a search for their own vector (beam `ef`) does not find, ascending; only the nodes
    /// of `among` (ascending) when given, else every node.
    std::vector<std::uint32_t> lost_nodes(std::size_t ef, std::size_t threads,
                                          const std::vector<std::uint32_t>* among = nullptr) const;
    /// Gives u a level-0 in-link from the first suitable node of `nearest` (sorted ascending). When that
    /// replaces a full list's farthest link, the node that lost its in-link is appended to `cut`.
    void link_in(std::uint32_t u, const std::vector<detail::Candidate>& nearest,
                 std::vector<std::uint32_t>& in_degree, std::vector<std::uint32_t>* cut = nullptr);

    // --- hnsw_search.cpp --------------------------------------------------------------------
    using Scratch = detail::SearchScratch;
    /// Greedy descent from the entry point through levels > `stop_level`; returns the closest slot.
    template <bool kLocked>
    std::uint32_t greedy_descent(const float* q, std::uint32_t ep, int from_level, int stop_level) const;
    /// Beam search on one level; leaves up to ef results in scratch.results (ascending from a sorted
    /// beam, a max-heap from the two-heap walk: callers sort what they need).
    /// kLocked: copy neighbour lists under their lock (during build).
    /// kChecked: deleted or filtered nodes are traversed but not returned. Without kLocked, the walk
    /// is a CheckedBeam when checked_beam_suits(filter), else the two heaps; both expand the same
    /// nodes and return the same results.
    template <bool kLocked, bool kChecked>
    void search_layer(const float* q, std::uint32_t ep, int level, std::size_t ef,
                      const LabelFilter* filter, Scratch& scratch) const;
    /// True when a checked walk should use the CheckedBeam: the filter (if any) says it allows most
    /// nodes and at most half of the slots are deleted, so the beam's disallowed entries stay few.
    bool checked_beam_suits(const LabelFilter* filter) const noexcept;
    /// `bar` (SearchParams::bound): the walk may stop early at candidates beyond it (float32 walks).
    void search_one(const float* q, std::size_t k, std::size_t ef, const LabelFilter* filter,
                    Scratch& scratch, Label* out_labels, float* out_distances,
                    float bar = std::numeric_limits<float>::infinity()) const;
    /// search_one for a coded graph: walks code estimates (integer ones for SQ8), re-scores the best
    /// `rescore` of the final beam in float32 (SearchParams::rescore: kRescoreDefault = the default
    /// depth, 0 = none, else at least k).
    void search_one_coded(const float* q, std::size_t k, std::size_t ef, std::size_t rescore,
                          const LabelFilter* filter, Scratch& scratch, Label* out_labels,
                          float* out_distances) const;
    /// The re-score depth when SearchParams::rescore is kRescoreDefault: min(ef, max(2k, 32)) for SQ8 (`sq8`:
    /// the integer walk), min(ef, max(4k, 32)) for other codecs; at least k.
    static std::size_t default_rescore(std::size_t k, std::size_t ef, bool sq8) noexcept;
};

/// Calls fn(slot) for every live slot whose label `allowed` holds: a label equal to its own slot (the
/// usual case) is taken without the map; others go through slot_of. `Set` has for_each(label).
template <class Set, class Fn>
void for_each_allowed_slot(const HnswGraph& g, const Set& allowed, Fn&& fn) {
    allowed.for_each([&](std::uint32_t label) {
        if (label < g.count && to_int(g.labels[label]) == label && g.deleted[label] == 0) {
            fn(label);
            return;
        }
        const auto it = g.slot_of.find(label);
        if (it != g.slot_of.end() && g.deleted[it->second] == 0) fn(it->second);
    });
}

}  // namespace quiver::index
