#include "quiver/index/hnsw_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <sys/mman.h>

#include "index/hnsw/hnsw_graph.h"
#include "index/prepare.h"
#include "index/search_pool.h"
#include "quiver/core/check.h"
#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/simd/code_kernels.h"

namespace quiver::index {

Status HnswGraph::init(std::size_t d, Metric m, const HnswParams& p) {
    dim = d;
    metric = m;
    dist = simd::distance_fn(m);
    params = p;
    params.ef_construction = std::max(params.ef_construction, params.M);
    max_m = params.M;
    max_m0 = 2 * params.M;
    level_mult = 1.0 / std::log(static_cast<double>(params.M));
    codec.reset();
    if (params.codec.kind != CodecKind::kNone) {
        QUIVER_ASSIGN_OR_RETURN(codec, Codec::create(params.codec, dim, metric, params.seed));
        if (codec->block_size() != 1) {
            return invalid_argument(fmt::format("codec {} stores codes in blocks; HNSW needs one code per node",
                                                params.codec.to_string()));
        }
    }
    int_walk = coded() && codec->has_int8_query();
    u8s8_dot = simd::active_code_kernels().u8s8_dot;
    u8s8_dot_batch = simd::active_code_kernels().u8s8_dot_batch;
    code_terms.clear();
    vector_bytes = coded() ? codec->code_size() : dim * sizeof(float);
    const std::size_t raw = vector_bytes + (1 + max_m0) * sizeof(std::uint32_t);
    stride = (raw + 31) / 32 * 32;
    upper_block = 1 + max_m;
    level_rng.seed(params.seed);
    update_vec_base();
    return {};
}

void HnswGraph::reserve(std::size_t needed) {
    if (needed <= capacity && !mapping) return;
    const std::size_t new_cap = std::max(needed, capacity + capacity / 2);
    // Searches touch records at random: from 2 MiB up the array sits on 2 MiB boundaries and asks for
    // transparent huge pages (advice only), so a walk takes a TLB miss per 2 MiB, not per 4 KiB.
    constexpr std::size_t kHugePage = std::size_t{2} << 20;
    std::size_t bytes = (new_cap * stride + 63) / 64 * 64;
    const bool huge = bytes >= kHugePage;
    if (huge) bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    auto* fresh = static_cast<std::byte*>(std::aligned_alloc(huge ? kHugePage : 64, bytes));
    QUIVER_CHECK_MSG(fresh != nullptr, "out of memory growing the HNSW level-0 array");
    if (huge) (void)::madvise(fresh, bytes, MADV_HUGEPAGE);
    if (count > 0) std::memcpy(fresh, level0, count * stride);
    if (coded()) {  // the vectors may be the mapping's (or on disk): copy them before it is released
        std::vector<float> grown(new_cap * dim);
        QUIVER_CHECK_MSG(!on_disk(), "vectors on disk must be loaded (load_vectors) before growing");
        if (count > 0) std::memcpy(grown.data(), vec_base, count * dim * sizeof(float));
        floats = std::move(grown);
    }
    owned.reset(fresh);
    mapping.reset();
    level0 = fresh;
    capacity = new_cap;
    update_vec_base();
    locks.resize(new_cap);
    scratch_pool.reset(new_cap);
}

Status HnswGraph::load_vectors() {
    if (!on_disk()) return {};
    std::vector<float> all(std::max(count, capacity) * dim);
    for (std::uint32_t s = 0; s < count; ++s) {
        if (!read_vector(s, all.data() + s * dim)) {
            return data_loss(fmt::format("reading the vector of HNSW node {} from disk failed", s));
        }
    }
    floats = std::move(all);
    disk_fd.reset();
    update_vec_base();
    return {};
}

void HnswGraph::compute_code_terms(std::size_t from) {
    if (!int_walk || !codec->has_code_term()) return;
    code_terms.resize(count);
    for (std::size_t s = from; s < count; ++s) code_terms[s] = codec->code_term(code(static_cast<std::uint32_t>(s)));
}

void HnswGraph::materialize() {
    if (mapping) reserve(std::max<std::size_t>(count, 1));
}

std::size_t HnswGraph::memory_bytes() const {
    // Level-0 records + per-slot side arrays + upper arena + label map (node + bucket estimate).
    const std::size_t vector_floats = coded() && !on_disk() ? std::max(floats.capacity(), count * dim) : 0;
    // code_terms: counted once an opened index computed them on first use, so figures do not jump.
    const std::size_t terms = std::max(code_terms.capacity(), int_walk && codec->has_code_term() ? count : 0);
    return capacity * stride + vector_floats * sizeof(float) + terms * sizeof(float) +
           (codec ? codec->parameter_bytes() : 0) + labels.capacity() * sizeof(Label) + levels.capacity() +
           deleted.capacity() + locks.size() + upper_offset.capacity() * sizeof(std::uint64_t) +
           upper.capacity() * sizeof(std::uint32_t) + slot_of.size() * 40 + slot_of.bucket_count() * 8;
}

namespace {

/// Trains `codec` on an evenly strided sample of `rows` (at most its default sample size).
Status train_on_sample(Codec& codec, MatrixView<float> rows) {
    const std::size_t want = std::min(rows.rows, codec.default_train_rows());
    std::vector<float> sample(want * rows.dim);
    for (std::size_t i = 0; i < want; ++i) {
        std::memcpy(sample.data() + i * rows.dim, rows.row_ptr(i * rows.rows / want), rows.dim * sizeof(float));
    }
    return codec.train(MatrixView<float>{sample.data(), want, rows.dim});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
HnswIndex::HnswIndex(std::unique_ptr<HnswGraph> graph)
    : graph_(std::move(graph)), search_pool_(std::make_unique<detail::SearchPool>()) {}
HnswIndex::~HnswIndex() = default;

Result<std::unique_ptr<HnswIndex>> HnswIndex::create(std::size_t dim, Metric metric,
                                                     const HnswParams& params) {
    if (dim == 0 || dim > (1u << 16)) {
        return invalid_argument(fmt::format("dimension {} is out of range (1 to 65536)", dim));
    }
    if (params.M < 2 || params.M > 256) {
        return invalid_argument(fmt::format("M = {} is out of range (2 to 256)", params.M));
    }
    if (params.ef_construction == 0 || params.ef_construction > 100000) {
        return invalid_argument(fmt::format("ef_construction = {} is out of range", params.ef_construction));
    }
    auto g = std::make_unique<HnswGraph>();
    QUIVER_TRY(g->init(dim, metric, params));
    return std::unique_ptr<HnswIndex>(new HnswIndex(std::move(g)));
}

IndexInfo HnswIndex::info() const {
    return {"hnsw", graph_->dim, graph_->metric, graph_->count - graph_->num_deleted};
}

const HnswParams& HnswIndex::params() const noexcept { return graph_->params; }
int HnswIndex::max_level() const noexcept { return graph_->max_level.load(); }
std::size_t HnswIndex::slots() const noexcept { return graph_->count; }
void HnswIndex::set_progress(ProgressBar* progress) noexcept { progress_ = progress; }
std::size_t HnswIndex::memory_bytes() const { return graph_->memory_bytes(); }
bool HnswIndex::is_mapped() const noexcept { return graph_->mapping != nullptr; }
bool HnswIndex::vectors_on_disk() const noexcept { return graph_->on_disk(); }

Status HnswIndex::verify() const { return graph_->deferred ? graph_->deferred->run() : ok_status(); }

std::size_t HnswIndex::unreachable_count() const {
    const HnswGraph& g = *graph_;
    if (!verify().ok()) return g.count - g.num_deleted;
    const std::vector<std::uint8_t> seen = g.reachable_from_entry();
    std::size_t n = 0;
    for (std::size_t s = 0; s < g.count; ++s) n += (seen[s] == 0 && g.deleted[s] == 0) ? 1 : 0;
    return n;
}

bool HnswIndex::has_unchecked_nodes() const noexcept { return graph_->unchecked_inserts > 0; }

std::size_t HnswIndex::repair_reachability() {
    HnswGraph& g = *graph_;
    if (g.max_level.load() < 0 || !verify().ok()) return 0;
    if (!g.load_vectors().ok()) return 0;
    g.materialize();
    g.unchecked_inserts = 0;
    return g.repair_reachability();
}

Status HnswIndex::add(MatrixView<float> vectors, std::span<const Label> labels) {
    QUIVER_TRY(verify());
    HnswGraph& g = *graph_;
    if (vectors.rows != labels.size()) {
        return invalid_argument(fmt::format("{} vectors but {} labels", vectors.rows, labels.size()));
    }
    QUIVER_TRY(detail::validate_rows(vectors, g.dim, g.metric, "vectors"));
    QUIVER_TRY(detail::validate_labels(labels));
    if (vectors.rows == 0) return {};
    QUIVER_TRY(g.load_vectors());
    if (g.count + vectors.rows >= std::numeric_limits<std::uint32_t>::max()) {
        return resource_exhausted("an HNSW index holds at most 2^32 - 2 vectors");
    }
    const auto prepared = detail::prepare_rows(vectors, g.metric);
    const std::size_t first = g.count;
    const std::size_t n = vectors.rows;
    std::vector<std::uint8_t> codes;
    if (g.coded()) {
        if (!g.codec->trained()) {
            // Trained on the first batch.
            if (std::min(n, g.codec->default_train_rows()) < g.codec->min_train_rows()) {
                return invalid_argument(fmt::format("codec {} needs at least {} vectors in the first add, got {}",
                                                    g.params.codec.to_string(), g.codec->min_train_rows(), n));
            }
            QUIVER_TRY(train_on_sample(*g.codec, prepared.view));
        }
        codes.resize(n * g.codec->code_size());
        g.codec->encode(prepared.view, codes.data());
    }
    g.reserve(first + n);

    // Lay out every new node (vector, empty links, level, upper blocks) before linking any.
    g.labels.resize(first + n);
    g.levels.resize(first + n);
    g.deleted.resize(first + n, 0);
    g.upper_offset.resize(first + n, 0);
    for (std::size_t i = 0; i < n; ++i) {
        const auto slot = static_cast<std::uint32_t>(first + i);
        if (g.coded()) {
            std::memcpy(g.payload_mut(slot), codes.data() + i * g.vector_bytes, g.vector_bytes);
            std::memcpy(g.floats.data() + slot * g.dim, prepared.view.row_ptr(i), g.dim * sizeof(float));
        } else {
            std::memcpy(g.payload_mut(slot), prepared.view.row_ptr(i), g.vector_bytes);
        }
        g.links(slot, 0)[0] = 0;
        const int level = g.random_level();
        g.levels[slot] = static_cast<std::uint8_t>(level);
        g.upper_offset[slot] = g.upper.size();
        g.upper.resize(g.upper.size() + static_cast<std::size_t>(level) * g.upper_block, 0);
        g.labels[slot] = labels[i];
        auto [it, inserted] = g.slot_of.try_emplace(to_int(labels[i]), slot);
        if (!inserted) {  // replace: tombstone the old node
            g.deleted[it->second] = 1;
            ++g.num_deleted;
            it->second = slot;
        }
    }
    g.count = first + n;
    g.compute_code_terms(first);

    std::size_t begin = 0;
    if (g.max_level.load() < 0) {
        g.insert(static_cast<std::uint32_t>(first), false);
        begin = 1;
    }
    ThreadPool pool(resolve_threads(g.params.threads));
    const bool concurrent = pool.size() > 1 && n - begin > 1;
    ProgressBar* progress = progress_;
    if (progress) progress->add(begin);
    g.settled.assign(g.count, 0);  // lists from before this call count as unsettled
    pool.parallel_for(n - begin, [&](std::size_t i, std::size_t) {
        g.insert(static_cast<std::uint32_t>(first + begin + i), concurrent);
        if (progress) progress->add(1);
    }, 16);
    std::vector<std::uint32_t>().swap(g.settled);
    // Every live node must be findable from the entry point. The check searches for every node
    // (a narrow beam), so it runs once half the slots were inserted since the last one: a one-shot
    // build (segment, merge, compaction) always ends with it; amortised, it costs at most two
    // narrow searches per insert.
    g.unchecked_inserts += n;
    if (g.unchecked_inserts * 2 >= g.count) {
        g.repair_reachability();
        g.unchecked_inserts = 0;
    }
    return compact_if_needed();
}

bool HnswIndex::needs_compaction() const noexcept {
    const HnswGraph& g = *graph_;
    return g.num_deleted >= kCompactMinDeleted && g.num_deleted * 4 >= g.count;
}

Status HnswIndex::compact_if_needed() { return needs_compaction() ? compact() : ok_status(); }

Status HnswIndex::compact() {
    if (graph_->num_deleted == 0) return ok_status();
    QUIVER_TRY(verify());
    QUIVER_TRY(graph_->load_vectors());
    const HnswGraph& g = *graph_;
    // Live slots in slot order, so the rebuilt graph inserts them in their original order.
    std::vector<std::uint32_t> live;
    live.reserve(g.count - g.num_deleted);
    for (std::uint32_t s = 0; s < g.count; ++s) {
        if (g.deleted[s] == 0) live.push_back(s);
    }
    std::vector<float> rows(live.size() * g.dim);
    std::vector<Label> labels(live.size());
    for (std::size_t i = 0; i < live.size(); ++i) {
        std::memcpy(rows.data() + i * g.dim, g.vec(live[i]), g.dim * sizeof(float));
        labels[i] = g.labels[live[i]];
    }
    auto fresh = std::make_unique<HnswGraph>();
    QUIVER_TRY(fresh->init(g.dim, g.metric, g.params));
    HnswIndex rebuilt(std::move(fresh));
    if (!live.empty()) QUIVER_TRY(rebuilt.add(MatrixView<float>{rows.data(), live.size(), g.dim}, labels));
    graph_ = std::move(rebuilt.graph_);
    return ok_status();
}

Status HnswIndex::drop(std::span<const Label> removed, std::size_t threads, bool repair) {
    QUIVER_TRY(verify());
    if (!external_ids().empty()) {
        return failed_precondition("drop() renumbers labels; an index with external ids cannot keep them");
    }
    HnswGraph& g = *graph_;
    std::vector<std::uint64_t> gone(removed.size());
    for (std::size_t i = 0; i < removed.size(); ++i) gone[i] = to_int(removed[i]);
    std::sort(gone.begin(), gone.end());
    gone.erase(std::unique(gone.begin(), gone.end()), gone.end());
    if (gone.empty() && g.num_deleted == 0) return ok_status();
    QUIVER_TRY(g.load_vectors());
    g.materialize();
    std::vector<std::uint8_t> dead(g.deleted.begin(), g.deleted.begin() + static_cast<std::ptrdiff_t>(g.count));
    for (const std::uint64_t l : gone) {
        const auto it = g.slot_of.find(l);
        if (it != g.slot_of.end()) dead[it->second] = 1;
    }
    g.consolidate(dead, threads);
    g.slot_of.clear();
    g.slot_of.reserve(g.count);
    for (std::uint32_t s = 0; s < g.count; ++s) {
        const std::uint64_t old = to_int(g.labels[s]);
        const auto below = static_cast<std::uint64_t>(std::lower_bound(gone.begin(), gone.end(), old) - gone.begin());
        g.labels[s] = Label{old - below};
        g.slot_of.emplace(old - below, s);
    }
    // A coded graph's codec is trained again on the vectors kept, as a rebuild would (the links were
    // chosen with float32 distances, so they stand), and every code re-encoded: a segment continued
    // compaction after compaction would otherwise keep the codec of its first build for good.
    if (g.coded() && g.count >= g.codec->min_train_rows()) {
        QUIVER_ASSIGN_OR_RETURN(auto codec, Codec::create(g.params.codec, g.dim, g.metric, g.params.seed));
        QUIVER_TRY(train_on_sample(*codec, MatrixView<float>{g.floats.data(), g.count, g.dim}));
        std::vector<std::uint8_t> code(codec->code_size());
        for (std::uint32_t s = 0; s < g.count; ++s) {
            codec->encode(MatrixView<float>{g.vec(s), 1, g.dim}, code.data());
            std::memcpy(g.payload_mut(s), code.data(), g.vector_bytes);
        }
        g.codec = std::move(codec);
        g.code_terms.clear();
        g.compute_code_terms(0);
    }
    // Every node counts as unchecked until the repair (the caller's, after its inserts, without `repair`).
    g.unchecked_inserts = g.count;
    if (repair && g.count > 0) {
        g.repair_reachability();
        g.unchecked_inserts = 0;
    }
    return ok_status();
}

Result<std::size_t> HnswIndex::remove(std::span<const Label> labels) {
    QUIVER_TRY(verify());
    HnswGraph& g = *graph_;
    std::size_t removed = 0;
    for (Label l : labels) {
        auto it = g.slot_of.find(to_int(l));
        if (it == g.slot_of.end()) continue;
        // Tombstones live in the (owned) side array: a mapped level-0 array stays mapped.
        g.deleted[it->second] = 1;
        ++g.num_deleted;
        g.slot_of.erase(it);
        ++removed;
    }
    QUIVER_TRY(compact_if_needed());
    return removed;
}

Result<SearchResults> HnswIndex::search(MatrixView<float> queries, const SearchParams& params) const {
    const HnswGraph& g = *graph_;
    if (params.k == 0) return invalid_argument("k must be at least 1");
    QUIVER_TRY(verify());
    QUIVER_TRY(detail::validate_rows(queries, g.dim, g.metric, "queries"));
    SearchResults results(queries.rows, params.k);
    if (queries.rows == 0 || g.count == g.num_deleted) return results;
    const auto prepared = detail::prepare_rows(queries, g.metric);
    const std::size_t ef = std::max(params.ef == 0 ? std::size_t{64} : params.ef, params.k);
    auto run = [&](std::size_t begin, std::size_t end) {
        detail::ScratchLease lease(g.scratch_pool);
        HnswGraph::Scratch& scratch = *lease;
        for (std::size_t q = begin; q < end; ++q) {
            if (g.coded()) {
                g.search_one_coded(prepared.view.row_ptr(q), params.k, ef, params.rescore, params.filter, scratch,
                                   results.labels.data() + q * params.k, results.distances.data() + q * params.k);
            } else {
                g.search_one(prepared.view.row_ptr(q), params.k, ef, params.filter, scratch,
                             results.labels.data() + q * params.k, results.distances.data() + q * params.k,
                             params.bound);
            }
        }
    };
    const std::size_t threads = std::min(resolve_threads(params.threads), queries.rows);
    if (threads <= 1) {
        run(0, queries.rows);
    } else {
        const std::size_t chunk = 32;
        search_pool_->parallel_for(threads, (queries.rows + chunk - 1) / chunk, [&](std::size_t c, std::size_t) {
            run(c * chunk, std::min(queries.rows, (c + 1) * chunk));
        });
    }
    return results;
}

}  // namespace quiver::index
