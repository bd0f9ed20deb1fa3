#include "quiver/index/flat_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "index/prepare.h"
#include "index/search_pool.h"
#include "index/topk.h"
#include "quiver/core/thread_pool.h"
#include "quiver/simd/gemm.h"

namespace quiver::index {
namespace {
// Batches at least this large go through matrix products (simd/gemm.h); smaller ones scan with the
// SIMD distance kernel.
constexpr std::size_t kBlasMinQueries = 16;
// The base is claimed by the threads in chunks of this many rows (dynamically: a thread that falls
// behind on a shared machine takes fewer), each scanned in row blocks of about kBlockBytes of vectors,
// which stay in L1 while every query panel passes over them.
constexpr std::size_t kChunkRows = 1024;
constexpr std::size_t kBlockBytes = 24 * 1024;
// A single query's scan is split across threads once the base has this many rows.
constexpr std::size_t kSplitMinRows = 16384;

std::size_t candidate_count(std::size_t k, std::size_t live) {
    return std::min(live, std::max(2 * k, k + 16));
}
}  // namespace

FlatIndex::FlatIndex(std::size_t dim, Metric metric)
    : dim_(dim),
      metric_(metric),
      row_distances_(simd::row_distances_fn(metric)),
      pool_(std::make_unique<detail::SearchPool>()) {}

FlatIndex::~FlatIndex() = default;

Result<std::unique_ptr<FlatIndex>> FlatIndex::create(std::size_t dim, Metric metric) {
    if (dim == 0 || dim > (1u << 16)) {
        return invalid_argument(fmt::format("dimension {} is out of range (1 to 65536)", dim));
    }
    return std::unique_ptr<FlatIndex>(new FlatIndex(dim, metric));
}

IndexInfo FlatIndex::info() const { return {"flat", dim_, metric_, live_}; }

std::size_t FlatIndex::memory_bytes() const {
    return labels_.size() * (dim_ * sizeof(float) + sizeof(float) + sizeof(Label) + 1) +
           slot_of_.size() * 32;
}

void FlatIndex::materialize() {
    if (!mapping_) return;
    owned_.assign(base_, base_ + labels_.size() * dim_);
    base_ = owned_.data();
    mapping_.reset();
}

Status FlatIndex::verify() const { return deferred_ ? deferred_->run() : ok_status(); }

Status FlatIndex::add(MatrixView<float> vectors, std::span<const Label> labels) {
    QUIVER_TRY(verify());
    if (vectors.rows != labels.size()) {
        return invalid_argument(
            fmt::format("{} vectors but {} labels", vectors.rows, labels.size()));
    }
    QUIVER_TRY(detail::validate_rows(vectors, dim_, metric_, "vectors"));
    QUIVER_TRY(detail::validate_labels(labels));
    if (vectors.rows == 0) return {};
    if (labels_.size() + vectors.rows > std::numeric_limits<std::uint32_t>::max()) {
        return resource_exhausted("a flat index holds at most 2^32 - 1 vectors");
    }
    materialize();
    const auto prepared = detail::prepare_rows(vectors, metric_);
    const std::size_t first = labels_.size();
    owned_.insert(owned_.end(), prepared.view.data, prepared.view.data + prepared.view.size());
    base_ = owned_.data();
    const auto& kern = simd::active_kernels();
    for (std::size_t r = 0; r < vectors.rows; ++r) {
        const std::uint64_t label = to_int(labels[r]);
        auto [it, inserted] = slot_of_.try_emplace(label, static_cast<std::uint32_t>(first + r));
        if (!inserted) {
            removed_[it->second] = 1;  // replaced: the old slot is never returned again
            --live_;
            it->second = static_cast<std::uint32_t>(first + r);
        }
        labels_.push_back(labels[r]);
        removed_.push_back(0);
        norms_.push_back(kern.norm_squared(base_ + (first + r) * dim_, dim_));
        ++live_;
    }
    return {};
}

Result<std::size_t> FlatIndex::remove(std::span<const Label> labels) {
    QUIVER_TRY(verify());
    std::size_t n = 0;
    for (Label l : labels) {
        auto it = slot_of_.find(to_int(l));
        if (it == slot_of_.end()) continue;
        removed_[it->second] = 1;
        slot_of_.erase(it);
        --live_;
        ++n;
    }
    return n;
}

double FlatIndex::exact_distance(const float* q, std::size_t slot) const noexcept {
    const float* x = vector(slot);
    double s = 0;
    if (metric_ == Metric::kL2) {
        for (std::size_t j = 0; j < dim_; ++j) {
            const double d = static_cast<double>(q[j]) - x[j];
            s += d * d;
        }
        return s;
    }
    for (std::size_t j = 0; j < dim_; ++j) s += static_cast<double>(q[j]) * x[j];
    return 1.0 - s;
}

void FlatIndex::candidates_scan(MatrixView<float> queries, std::size_t kk, const SearchParams& params,
                                std::vector<std::vector<std::pair<float, std::uint64_t>>>& out) const {
    const std::size_t threads = resolve_threads(params.threads);
    const std::size_t n = labels_.size();
    // Distances a block of rows at a time (one kernel call per block, simd/rows.h); the liveness and
    // filter test runs only for rows that would enter the top list.
    auto scan = [&](const float* qv, std::size_t begin, std::size_t end, detail::TopK& top) {
        constexpr std::size_t kBlock = 256;
        float d[kBlock];
        for (std::size_t b = begin; b < end; b += kBlock) {
            const std::size_t m = std::min(kBlock, end - b);
            row_distances_(qv, vector(b), dim_, m, dim_, d);
            for (std::size_t j = 0; j < m; ++j) {
                if (d[j] <= top.threshold() && live(b + j, params.filter)) top.push(d[j], b + j);
            }
        }
    };
    if (queries.rows >= threads || n < kSplitMinRows) {
        pool_->parallel_for(threads, queries.rows, [&](std::size_t q, std::size_t) {
            detail::TopK top(kk);
            scan(queries.row_ptr(q), 0, n, top);
            out[q] = top.take_sorted();
        });
        return;
    }
    // Fewer queries than threads: split each query's scan over the base, then merge the parts.
    const std::size_t parts = std::min(threads * 4, (n + kSplitMinRows / 4 - 1) / (kSplitMinRows / 4));
    const std::size_t part_rows = (n + parts - 1) / parts;
    std::vector<detail::TopK> tops(parts);
    for (std::size_t q = 0; q < queries.rows; ++q) {
        const float* qv = queries.row_ptr(q);
        pool_->parallel_for(threads, parts, [&](std::size_t p, std::size_t) {
            tops[p].reset(kk);
            scan(qv, p * part_rows, std::min(n, (p + 1) * part_rows), tops[p]);
        });
        detail::TopK merged(kk);
        for (auto& t : tops) {
            for (const auto& [d, slot] : t.take_sorted()) merged.push(d, slot);
        }
        out[q] = merged.take_sorted();
    }
}

void FlatIndex::candidates_gemm(MatrixView<float> queries, std::size_t kk, const SearchParams& params,
                                std::vector<std::vector<std::pair<float, std::uint64_t>>>& out) const {
    const std::size_t threads = resolve_threads(params.threads);
    const std::size_t n = labels_.size();
    const std::size_t nq = queries.rows;
    const bool l2 = metric_ == Metric::kL2;
    const simd::GemmKernels& gk = simd::gemm_kernels();
    const std::size_t mr = gk.mr;
    // The queries are packed once into panels of kGemmPanel (simd/gemm.h); the base rows are read in
    // place as the kernel's broadcast operand, so the base is never copied. Each tile's distances are
    // compared with its queries' current bounds in registers (GemmKernels::scan): only the few rows
    // that beat a bound leave the kernel.
    simd::PackedB packed;
    simd::pack_rows(queries.data, nq, dim_, dim_, packed);
    const std::size_t panels = packed.panels();
    std::vector<float> offsets(panels * simd::kGemmPanel, 0.0f);
    const auto& kern = simd::active_kernels();
    for (std::size_t q = 0; q < nq; ++q) offsets[q] = l2 ? kern.norm_squared(queries.row_ptr(q), dim_) : 1.0f;
    const float scale = l2 ? -2.0f : -1.0f;
    const std::size_t chunks = (n + kChunkRows - 1) / kChunkRows;
    const std::size_t workers = std::max<std::size_t>(1, std::min(threads, chunks));
    const std::size_t block = std::max(mr, std::min(kChunkRows, kBlockBytes / (dim_ * sizeof(float))) / mr * mr);
    // Per worker: a top-k list per query and the lists' thresholds as the kernel's bounds (-infinity
    // past the last query).
    struct Worker {
        std::vector<detail::TopK> top;
        std::vector<float> bounds;
    };
    std::vector<Worker> ws(workers);
    pool_->parallel_for(workers, chunks, [&](std::size_t chunk, std::size_t w) {
        Worker& st = ws[w];
        if (st.top.empty()) {
            st.top.assign(nq, detail::TopK(kk));
            st.bounds.assign(panels * simd::kGemmPanel, -std::numeric_limits<float>::infinity());
            std::fill(st.bounds.begin(), st.bounds.begin() + static_cast<std::ptrdiff_t>(nq),
                      std::numeric_limits<float>::infinity());
        }
        alignas(64) float d[12 * simd::kGemmPanel];
        std::uint32_t hits[12];
        const std::size_t r_end = std::min(n, (chunk + 1) * kChunkRows);
        for (std::size_t b0 = chunk * kChunkRows; b0 < r_end; b0 += block) {
            const std::size_t rows = std::min(block, r_end - b0);
            // Tiles of equal height (16 rows: 8 + 8, not 12 + 4).
            const std::size_t tiles = (rows + mr - 1) / mr;
            for (std::size_t p = 0; p < panels; ++p) {
                const std::size_t q0 = p * simd::kGemmPanel;
                const std::size_t nr = std::min(simd::kGemmPanel, nq - q0);
                float* bound = st.bounds.data() + q0;
                for (std::size_t t = 0, r = b0; t < tiles; ++t) {
                    const std::size_t h = rows / tiles + (t < rows % tiles ? 1 : 0);
                    std::uint32_t kept = gk.scan(base_ + r * dim_, dim_, packed.panel(p), dim_, h, nr,
                                                 l2 ? norms_.data() + r : nullptr, offsets.data() + q0, scale, bound,
                                                 d, hits);
                    while (kept != 0) {
                        const auto i = static_cast<std::size_t>(__builtin_ctz(kept));
                        kept &= kept - 1;
                        const std::size_t slot = r + i;
                        if (!live(slot, params.filter)) continue;
                        for (std::uint32_t cols = hits[i]; cols != 0; cols &= cols - 1) {
                            const auto j = static_cast<std::size_t>(__builtin_ctz(cols));
                            detail::TopK& top = st.top[q0 + j];
                            const float dist = d[i * simd::kGemmPanel + j];
                            if (dist <= top.threshold()) {
                                top.push(dist, slot);
                                bound[j] = top.threshold();
                            }
                        }
                    }
                    r += h;
                }
            }
        }
    });
    std::size_t used = 0;
    for (const Worker& st : ws) used += st.top.empty() ? 0 : 1;
    pool_->parallel_for(threads, nq, [&](std::size_t q, std::size_t) {
        if (used == 1) {
            for (Worker& st : ws) {
                if (!st.top.empty()) out[q] = st.top[q].take_sorted();
            }
            return;
        }
        detail::TopK merged(kk);
        for (Worker& st : ws) {
            if (st.top.empty()) continue;
            for (const auto& [dist, slot] : st.top[q].take_sorted()) merged.push(dist, slot);
        }
        out[q] = merged.take_sorted();
    }, 64);
}

Result<SearchResults> FlatIndex::search(MatrixView<float> queries, const SearchParams& params) const {
    if (params.k == 0) return invalid_argument("k must be at least 1");
    QUIVER_TRY(detail::validate_rows(queries, dim_, metric_, "queries"));
    QUIVER_TRY(verify());
    SearchResults results(queries.rows, params.k);
    if (queries.rows == 0 || live_ == 0) return results;
    const auto prepared = detail::prepare_rows(queries, metric_);
    const std::size_t kk = candidate_count(params.k, live_);
    std::vector<std::vector<std::pair<float, std::uint64_t>>> cands(queries.rows);
    if (queries.rows >= kBlasMinQueries) {
        candidates_gemm(prepared.view, kk, params, cands);
    } else {
        candidates_scan(prepared.view, kk, params, cands);
    }
    // Re-score the float candidates in double precision so ties and near-ties resolve exactly
    // (then by lower label), independent of the kernel's blocking and SIMD level.
    auto rescore = [&](std::size_t q, std::size_t) {
        std::vector<std::pair<double, std::uint64_t>> exact;
        exact.reserve(cands[q].size());
        for (const auto& [d, slot] : cands[q]) {
            exact.emplace_back(exact_distance(prepared.view.row_ptr(q), slot), to_int(labels_[slot]));
        }
        std::sort(exact.begin(), exact.end());
        const std::size_t m = std::min(params.k, exact.size());
        for (std::size_t j = 0; j < m; ++j) {
            results.labels[q * params.k + j] = Label{exact[j].second};
            results.distances[q * params.k + j] = static_cast<float>(exact[j].first);
        }
    };
    if (queries.rows >= kBlasMinQueries) {
        pool_->parallel_for(resolve_threads(params.threads), queries.rows, rescore, 64);
    } else {
        for (std::size_t q = 0; q < queries.rows; ++q) rescore(q, 0);
    }
    return results;
}

}  // namespace quiver::index
