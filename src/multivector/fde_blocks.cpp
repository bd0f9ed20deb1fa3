// MUVERA document FDEs by partition block (int8, four coordinates of a document interleaved): a flat FDE
// scan over only the blocks a query occupies, in exact int32 dot products.
#include "quiver/multivector/fde_blocks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
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
    for (float& s : scales) s /= 127.0f;  // 0 for a coordinate that is 0 in every document
    // Pass 2: the codes, 64 documents per task (a task writes whole 256-byte runs of every group row,
    // so threads rarely share cache lines).
    const std::size_t width = mv.block_width();
    const std::size_t groups = (width + 3) / 4;
    const std::size_t rows = dim / width * groups;
    constexpr std::size_t kRun = 64;
    std::vector<std::int8_t> codes(rows * n * 4);
    std::vector<std::vector<std::int8_t>> runs(pool.size(), std::vector<std::int8_t>(kRun * rows * 4));
    pool.parallel_for((n + kRun - 1) / kRun, [&](std::size_t task, std::size_t worker) {
        Worker& w = work[worker];
        std::vector<std::int8_t>& run = runs[worker];
        std::fill(run.begin(), run.end(), std::int8_t{0});
        const std::size_t first = task * kRun;
        const std::size_t count = std::min(kRun, n - first);
        for (std::size_t r = 0; r < count; ++r) {
            encode(first + r, w);
            for (std::size_t i = 0; i < dim; ++i) {
                const std::size_t block = i / width, j = i % width;
                const std::size_t row = block * groups + j / 4;
                const float code = scales[i] > 0.0f ? std::nearbyint(w.fde[i] / scales[i]) : 0.0f;
                run[(row * kRun + r) * 4 + j % 4] = static_cast<std::int8_t>(std::clamp(code, -127.0f, 127.0f));
            }
        }
        for (std::size_t row = 0; row < rows; ++row) {
            std::copy_n(run.data() + row * kRun * 4, count * 4, codes.data() + (row * n + first) * 4);
        }
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
    const std::size_t blocks = width_ == 0 ? 0 : dim() / width_;
    const std::size_t per_block = groups();
    // The query's non-zero blocks, and the largest |fq_i * s_i| over them (the query's code scale).
    std::vector<std::size_t> occupied;
    float amax = 0.0f;
    for (std::size_t b = 0; b < blocks; ++b) {
        bool any = false;
        for (std::size_t j = 0; j < width_; ++j) {
            const std::size_t i = b * width_ + j;
            any = any || fq[i] != 0.0f;
            amax = std::max(amax, std::abs(fq[i] * scales_[i]));
        }
        if (any) occupied.push_back(b);
    }
    if (amax == 0.0f || n_ == 0) return occupied.size();  // every score is 0
    const float alpha = amax / 127.0f;
    // Four query codes per group row of the occupied blocks (0 past a block's width), and the rows.
    const std::size_t rows = occupied.size() * per_block;
    std::vector<std::int8_t> q(rows * 4, 0);
    std::vector<const std::int8_t*> row_ptr(rows);
    for (std::size_t o = 0; o < occupied.size(); ++o) {
        const std::size_t b = occupied[o];
        for (std::size_t j = 0; j < width_; ++j) {
            const std::size_t i = b * width_ + j;
            const float code = std::nearbyint(fq[i] * scales_[i] / alpha);
            q[(o * per_block + j / 4) * 4 + j % 4] = static_cast<std::int8_t>(std::clamp(code, -127.0f, 127.0f));
        }
        for (std::size_t g = 0; g < per_block; ++g) {
            row_ptr[o * per_block + g] = codes_.data() + (b * per_block + g) * n_ * 4;
        }
    }
    // Tiles of documents whose int32 sums stay in L1; the rows in chunks, so each kernel call streams a
    // few contiguous runs. A group row adds at most 4 * 127 * 127 in magnitude: after kFlushRows rows
    // the sums are moved into the float scores, so no int32 sum can overflow.
    constexpr std::size_t kTile = 4096;
    constexpr std::size_t kRowsPerCall = 8;
    constexpr std::size_t kFlushRows = 32768;
    const auto dot4 = simd::active_int8_kernels().s8_dot4_rows;
    std::vector<std::int32_t> acc(std::min(kTile, n_));
    std::vector<const std::int8_t*> ptrs(kRowsPerCall);
    for (std::size_t first = 0; first < n_; first += kTile) {
        const std::size_t count = std::min(kTile, n_ - first);
        std::size_t since_flush = 0;
        std::fill_n(acc.begin(), count, 0);
        for (std::size_t r0 = 0; r0 < rows; r0 += kRowsPerCall) {
            const std::size_t nr = std::min(kRowsPerCall, rows - r0);
            for (std::size_t r = 0; r < nr; ++r) ptrs[r] = row_ptr[r0 + r] + first * 4;
            dot4(q.data() + r0 * 4, ptrs.data(), nr, count, acc.data());
            since_flush += nr;
            if (since_flush >= kFlushRows || r0 + nr == rows) {
                for (std::size_t d = 0; d < count; ++d) scores[first + d] += alpha * static_cast<float>(acc[d]);
                std::fill_n(acc.begin(), count, 0);
                since_flush = 0;
            }
        }
    }
    return occupied.size();
}

std::vector<std::uint32_t> FdeBlocks::top(const float* fq, std::size_t c, std::vector<float>& scores) const {
    score_all(fq, scores);
    return best(scores, c);
}

std::vector<std::uint32_t> FdeBlocks::best(const std::vector<float>& scores, std::size_t c) {
    constexpr float kExcluded = -std::numeric_limits<float>::infinity();
    std::vector<std::uint32_t> ids;
    if (c == 0) return ids;
    // The c-th best score by selection over a copy of the scores (contiguous floats, cheaper than
    // selecting document numbers by their scores), then every document above it and the lowest-numbered
    // ones equal to it.
    std::vector<float> kept;
    kept.reserve(scores.size());
    for (const float s : scores) {
        if (s != kExcluded) kept.push_back(s);
    }
    if (c < kept.size()) {
        std::nth_element(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(c - 1), kept.end(), std::greater<>());
        const float cut = kept[c - 1];
        ids.reserve(c);
        for (std::size_t d = 0; d < scores.size(); ++d) {
            if (scores[d] > cut) ids.push_back(static_cast<std::uint32_t>(d));
        }
        for (std::size_t d = 0; d < scores.size() && ids.size() < c; ++d) {
            if (scores[d] == cut) ids.push_back(static_cast<std::uint32_t>(d));
        }
    } else {
        ids.reserve(kept.size());
        for (std::size_t d = 0; d < scores.size(); ++d) {
            if (scores[d] != kExcluded) ids.push_back(static_cast<std::uint32_t>(d));
        }
    }
    std::sort(ids.begin(), ids.end(), [&](std::uint32_t x, std::uint32_t y) {
        return scores[x] > scores[y] || (scores[x] == scores[y] && x < y);
    });
    return ids;
}

Status FdeBlocks::write(storage::FileWriter& w) const {
    QUIVER_TRY(w.write_pod<std::uint64_t>(n_));
    QUIVER_TRY(w.write_pod<std::uint64_t>(width_));
    QUIVER_TRY(storage::write_buffer(w, scales_.span()));
    return storage::write_buffer(w, codes_.span());
}

Result<FdeBlocks> FdeBlocks::read(storage::BinaryReader& r, const Muvera& mv, std::size_t n, bool in_memory,
                                  std::uint32_t version) {
    FdeBlocks b;
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t docs, r.read_pod<std::uint64_t>());
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t width, r.read_pod<std::uint64_t>());
    if (docs != n || width != mv.block_width() || width == 0 || mv.params().d_final != 0) {
        return r.corrupt(fmt::format("blocked FDEs: {} documents of block width {}, expected {} of {} (d_final {})",
                                     docs, width, n, mv.block_width(), mv.params().d_final));
    }
    b.n_ = n;
    b.width_ = static_cast<std::size_t>(width);
    const std::size_t dim = mv.fde_dim();
    const std::size_t rows = dim / b.width_ * b.groups();
    QUIVER_ASSIGN_OR_RETURN(b.scales_, storage::read_buffer<float>(r, "blocked FDE scales"));
    QUIVER_ASSIGN_OR_RETURN(b.codes_, storage::read_buffer<std::int8_t>(r, "blocked FDE codes"));
    // Version 2: coordinate-major, dim x n; version 3: interleaved, rows x n x 4 (n > 0 checked first,
    // so the products below are only formed when they match a section that exists).
    const std::size_t want_per_doc = version >= 3 ? rows * 4 : dim;
    if (b.scales_.size() != dim || (n == 0 ? b.codes_.size() != 0
                                           : b.codes_.size() % n != 0 || b.codes_.size() / n != want_per_doc)) {
        return r.corrupt(fmt::format("blocked FDEs: {} scales and {} codes, expected {} and {} x {}", b.scales_.size(),
                                     b.codes_.size(), dim, want_per_doc, n));
    }
    for (std::size_t i = 0; i < b.scales_.size(); ++i) {
        if (!std::isfinite(b.scales_[i]) || b.scales_[i] < 0.0f) {
            return r.corrupt(fmt::format("blocked FDEs: coordinate {} has scale {}", i, b.scales_[i]));
        }
    }
    if (version < 3) {
        // Re-lay the coordinate-major codes out as group rows (in memory).
        std::vector<std::int8_t> codes(rows * n * 4, 0);
        const std::int8_t* old = b.codes_.data();
        for (std::size_t i = 0; i < dim; ++i) {
            const std::size_t j = i % b.width_;
            const std::size_t row = i / b.width_ * b.groups() + j / 4;
            std::int8_t* out = codes.data() + row * n * 4 + j % 4;
            for (std::size_t d = 0; d < n; ++d) out[d * 4] = old[i * n + d];
        }
        b.codes_ = storage::Buffer<std::int8_t>(std::move(codes));
        in_memory = true;
    }
    if (in_memory) {
        b.scales_ = storage::Buffer<float>(std::vector<float>(b.scales_.span().begin(), b.scales_.span().end()));
        if (version >= 3) {
            b.codes_ = storage::Buffer<std::int8_t>(
                std::vector<std::int8_t>(b.codes_.span().begin(), b.codes_.span().end()));
        }
    }
    return b;
}

}  // namespace quiver::multivector
