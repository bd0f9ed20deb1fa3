// MUVERA document FDEs by partition block (int8, coordinate-major): a flat FDE scan over only the blocks
// a query occupies.
#include "quiver/multivector/fde_blocks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "quiver/core/thread_pool.h"
#include "quiver/simd/int8_kernels.h"

namespace quiver::multivector {

Result<FdeBlocks> FdeBlocks::build(const Muvera& mv, const TokenStore& store, std::size_t threads) {
    if (mv.params().d_final != 0) {
        return invalid_argument("blocked FDEs need d_final = 0 (the final projection mixes partition blocks)");
    }
    if (mv.dim() != store.dim()) {
        return invalid_argument(fmt::format("MUVERA dimension {}, token store {}", mv.dim(), store.dim()));
    }
    const std::size_t n = store.size();
    const std::size_t dim = mv.fde_dim();
    ThreadPool pool(threads);
    struct Worker {
        std::vector<float> rows, fde, amax;
    };
    std::vector<Worker> work(pool.size());
    auto encode = [&](std::size_t doc, Worker& w) {
        w.rows.resize(store.tokens(doc) * store.dim());
        store.decode(doc, w.rows.data());
        w.fde.resize(dim);
        mv.encode_document({w.rows.data(), store.tokens(doc), store.dim()}, w.fde.data());
    };
    // Pass 1: the largest magnitude of every coordinate.
    for (Worker& w : work) w.amax.assign(dim, 0.0f);
    pool.parallel_for(n, [&](std::size_t doc, std::size_t worker) {
        Worker& w = work[worker];
        encode(doc, w);
        for (std::size_t i = 0; i < dim; ++i) w.amax[i] = std::max(w.amax[i], std::abs(w.fde[i]));
    }, 16);
    std::vector<float> scales(dim, 0.0f);
    for (const Worker& w : work) {
        for (std::size_t i = 0; i < dim; ++i) scales[i] = std::max(scales[i], w.amax[i]);
    }
    for (float& s : scales) s = s > 0.0f ? s / 127.0f : 1.0f;
    // Pass 2: the codes, 64 documents per task (a task writes whole 64-byte runs of every coordinate
    // row, so threads rarely share cache lines).
    constexpr std::size_t kRun = 64;
    std::vector<std::int8_t> codes(dim * n);
    std::vector<std::vector<std::int8_t>> runs(pool.size(), std::vector<std::int8_t>(kRun * dim));
    pool.parallel_for((n + kRun - 1) / kRun, [&](std::size_t task, std::size_t worker) {
        Worker& w = work[worker];
        std::vector<std::int8_t>& run = runs[worker];
        const std::size_t first = task * kRun;
        const std::size_t count = std::min(kRun, n - first);
        for (std::size_t r = 0; r < count; ++r) {
            encode(first + r, w);
            for (std::size_t i = 0; i < dim; ++i) {
                run[i * kRun + r] = static_cast<std::int8_t>(std::clamp(std::nearbyint(w.fde[i] / scales[i]), -127.0f, 127.0f));
            }
        }
        for (std::size_t i = 0; i < dim; ++i) std::copy_n(run.data() + i * kRun, count, codes.data() + i * n + first);
    });
    FdeBlocks b;
    b.n_ = n;
    b.width_ = mv.block_width();
    b.scales_ = storage::Buffer<float>(std::move(scales));
    b.codes_ = storage::Buffer<std::int8_t>(std::move(codes));
    return b;
}

std::size_t FdeBlocks::score_all(const float* fq, std::vector<float>& scores) const {
    scores.assign(n_, 0.0f);
    const auto axpy = simd::active_int8_kernels().s8_axpy_rows;
    const std::size_t blocks = width_ == 0 ? 0 : dim() / width_;
    std::vector<float> a(width_);
    std::size_t scanned = 0;
    for (std::size_t b = 0; b < blocks; ++b) {
        const float* q = fq + b * width_;
        bool any = false;
        for (std::size_t j = 0; j < width_; ++j) {
            a[j] = q[j] * scales_[b * width_ + j];
            any = any || q[j] != 0.0f;
        }
        if (!any) continue;
        ++scanned;
        axpy(a.data(), width_, codes_.data() + b * width_ * n_, n_, n_, scores.data());
    }
    return scanned;
}

std::vector<std::uint32_t> FdeBlocks::top(const float* fq, std::size_t c, std::vector<float>& scores) const {
    score_all(fq, scores);
    return best(scores, c);
}

std::vector<std::uint32_t> FdeBlocks::best(const std::vector<float>& scores, std::size_t c) {
    constexpr float kExcluded = -std::numeric_limits<float>::infinity();
    std::vector<std::uint32_t> ids;
    ids.reserve(scores.size());
    for (std::size_t d = 0; d < scores.size(); ++d) {
        if (scores[d] != kExcluded) ids.push_back(static_cast<std::uint32_t>(d));
    }
    auto better = [&](std::uint32_t x, std::uint32_t y) {
        return scores[x] > scores[y] || (scores[x] == scores[y] && x < y);
    };
    if (c < ids.size()) {
        std::nth_element(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(c), ids.end(), better);
        ids.resize(c);
    }
    std::sort(ids.begin(), ids.end(), better);
    return ids;
}

Status FdeBlocks::write(storage::FileWriter& w) const {
    QUIVER_TRY(w.write_pod<std::uint64_t>(n_));
    QUIVER_TRY(w.write_pod<std::uint64_t>(width_));
    QUIVER_TRY(storage::write_buffer(w, scales_.span()));
    return storage::write_buffer(w, codes_.span());
}

Result<FdeBlocks> FdeBlocks::read(storage::BinaryReader& r, const Muvera& mv, std::size_t n, bool in_memory) {
    FdeBlocks b;
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t docs, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t width, r.read_pod<std::uint64_t>());
    if (docs != n || width != mv.block_width() || mv.params().d_final != 0) {
        return r.corrupt(fmt::format("blocked FDEs: {} documents of block width {}, expected {} of {} (d_final {})",
                                     docs, width, n, mv.block_width(), mv.params().d_final));
    }
    b.n_ = n;
    b.width_ = static_cast<std::size_t>(width);
    QUIVER_ASSIGN_OR_RETURN(b.scales_, storage::read_buffer<float>(r, "blocked FDE scales"));
    QUIVER_ASSIGN_OR_RETURN(b.codes_, storage::read_buffer<std::int8_t>(r, "blocked FDE codes"));
    if (b.scales_.size() != mv.fde_dim() || b.codes_.size() / mv.fde_dim() != n ||
        b.codes_.size() % mv.fde_dim() != 0) {
        return r.corrupt(fmt::format("blocked FDEs: {} scales and {} codes, expected {} and {} x {}", b.scales_.size(),
                                     b.codes_.size(), mv.fde_dim(), mv.fde_dim(), n));
    }
    for (std::size_t i = 0; i < b.scales_.size(); ++i) {
        if (!std::isfinite(b.scales_[i]) || b.scales_[i] < 0.0f) {
            return r.corrupt(fmt::format("blocked FDEs: coordinate {} has scale {}", i, b.scales_[i]));
        }
    }
    if (in_memory) {
        b.scales_ = storage::Buffer<float>(std::vector<float>(b.scales_.span().begin(), b.scales_.span().end()));
        b.codes_ = storage::Buffer<std::int8_t>(std::vector<std::int8_t>(b.codes_.span().begin(), b.codes_.span().end()));
    }
    return b;
}

}  // namespace quiver::multivector
