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
// Blocks sized for a 2 MiB L2: a packed base block (512 rows x dim floats; 200 KiB at dim 100), a
// query block (240 rows: whole 12-, 6- and 4-row tiles) and its scores (240 x 512 floats = 480 KiB).
constexpr std::size_t kQueryBlock = 240;
constexpr std::size_t kBaseBlock = 512;
// A single query's scan is split across threads once the base has this many rows.
constexpr std::size_t kSplitMinRows = 16384;

std::size_t candidate_count(std::size_t k, std::size_t live) {
    return std::min(live, std::max(2 * k, k + 16));
}
}  // namespace

FlatIndex::FlatIndex(std::size_t dim, Metric metric)
    : dim_(dim),
      metric_(metric),
      distance_(simd::distance_fn(metric)),
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
    auto scan = [&](const float* qv, std::size_t begin, std::size_t end, detail::TopK& top) {
        for (std::size_t s = begin; s < end; ++s) {
            if (!live(s, params.filter)) continue;
            const float d = distance_(qv, vector(s), dim_);
            if (d <= top.threshold()) top.push(d, s);
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
    std::vector<float> qnorms(metric_ == Metric::kL2 ? nq : 0);
    const auto& kern = simd::active_kernels();
    for (std::size_t q = 0; q < qnorms.size(); ++q) qnorms[q] = kern.norm_squared(queries.row_ptr(q), dim_);
    // The base blocks are split over the threads; each packs its blocks (simd/gemm.h panels) once and
    // passes every query block over a block while it is in L2, keeping its own top-k per query; the
    // threads' lists are merged at the end. Scores never leave the thread that made them.
    const std::size_t blocks = (n + kBaseBlock - 1) / kBaseBlock;
    const std::size_t parts = std::max<std::size_t>(1, std::min(threads, blocks));
    std::vector<std::vector<detail::TopK>> tops(parts);
    pool_->parallel_for(parts, parts, [&](std::size_t part, std::size_t) {
        std::vector<detail::TopK>& top = tops[part];
        top.assign(nq, detail::TopK(kk));
        simd::PackedB packed;
        std::vector<float> scores(kQueryBlock * kBaseBlock);
        std::vector<std::uint32_t> hits(kBaseBlock);
        const simd::GemmKernels& gk = simd::gemm_kernels();
        for (std::size_t blk = blocks * part / parts; blk < blocks * (part + 1) / parts; ++blk) {
            const std::size_t b0 = blk * kBaseBlock;
            const std::size_t bn = std::min(kBaseBlock, n - b0);
            simd::pack_rows(base_ + b0 * dim_, bn, dim_, dim_, packed);
            for (std::size_t q0 = 0; q0 < nq; q0 += kQueryBlock) {
                const std::size_t qn = std::min(kQueryBlock, nq - q0);
                simd::GemmArgs g;  // scores[qn x bn] = Q[q0..] * B[b0..]^T
                g.a = queries.row_ptr(q0);
                g.lda = dim_;
                g.m = qn;
                g.c = scores.data();
                g.ldc = bn;
                simd::gemm(g, packed);
                for (std::size_t qi = 0; qi < qn; ++qi) {
                    // The SIMD filter keeps the columns under the list's current bound (most blocks:
                    // none); each is re-checked against the bound as it tightens.
                    detail::TopK& t = top[q0 + qi];
                    const float* row = scores.data() + qi * bn;
                    const bool l2 = metric_ == Metric::kL2;
                    const float q2 = l2 ? qnorms[q0 + qi] : 1.0f;
                    const float* add = l2 ? norms_.data() + b0 : nullptr;
                    const float scale = l2 ? -2.0f : -1.0f;
                    const std::size_t m = gk.select(row, add, scale, q2, bn, t.threshold(), hits.data());
                    for (std::size_t h = 0; h < m; ++h) {
                        const std::size_t j = hits[h];
                        const float d = q2 + (add != nullptr ? add[j] : 0.0f) + scale * row[j];
                        if (d <= t.threshold() && live(b0 + j, params.filter)) t.push(d, b0 + j);
                    }
                }
            }
        }
    });
    for (std::size_t q = 0; q < nq; ++q) {
        if (parts == 1) {
            out[q] = tops[0][q].take_sorted();
            continue;
        }
        detail::TopK merged(kk);
        for (auto& part : tops) {
            for (const auto& [d, slot] : part[q].take_sorted()) merged.push(d, slot);
        }
        out[q] = merged.take_sorted();
    }
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
    // (then by lower label), independent of BLAS blocking and SIMD level.
    for (std::size_t q = 0; q < queries.rows; ++q) {
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
    }
    return results;
}

}  // namespace quiver::index
