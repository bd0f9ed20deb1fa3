/// @file int8_kernels.h
/// @brief Signed 8-bit kernels for late-interaction scoring over int8 token codes (multivector/
/// token_store.h kInt8) and int8 MUVERA encodings (multivector/fde_blocks.h), dispatched once at run
/// time like kernels.h: scalar reference, AVX2, AVX-512 (BW) and AVX-512 VNNI, each in its own
/// translation unit.
///
/// Codes are signed bytes; products are summed exactly in int32. Codes in [-128, 127] over at most
/// 65536 dimensions cannot overflow (|sum| <= 2^30), so every level returns the same integers, and
/// the float results of `s8_maxsim` (one int32 -> float conversion and one multiply per pair, the
/// maximum taken in float) are bit-identical at every level.
///
/// Thread-safety: pure functions; no alignment required.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quiver/simd/kernels.h"

namespace quiver::simd {

struct Int8Kernels {
    SimdLevel level;
    /// True when the AVX-512 table uses VNNI `vpdpbusd` (else 16-bit multiply-adds; exact alike).
    bool vnni;
    /// sum_k a[k] * b[k] over `d` signed bytes each, exact.
    std::int32_t (*s8_dot)(const std::int8_t* a, const std::int8_t* b, std::size_t d) noexcept;
    /// MaxSim of one document against a query, before the query scales:
    ///   out[i] = max over j < t of  float(dot(q_i, c_j)) * ds[j]      for i < m,
    /// where q_i is row i of the m x d query codes `q` and c_j row j of the t x d document codes `c`
    /// (both row-major), and ds[j] >= 0 the document row scales. t >= 1.
    void (*s8_maxsim)(const std::int8_t* q, std::size_t m, const std::int8_t* c, const float* ds, std::size_t t,
                      std::size_t d, float* out) noexcept;
    /// s8_maxsim over a query transposed in groups of four dimensions (the int8 form of MaxSimFn):
    ///   out[i] = max over j < t of  float(sum_k qt(k, i) * c[j * d + k]) * ds[j]      for i < stride,
    /// where qt(k, i) = qt[((k / 4) * stride + i) * 4 + k % 4] is query row i's code of dimension k
    /// (0 past d and in lanes past the query's rows), stride a multiple of 16, and c, ds, t as in
    /// s8_maxsim. The sums are exact, so each real row's maximum equals s8_maxsim's bit for bit.
    /// Present (not nullptr) only in tables where it is the faster form: AVX-512 VNNI (one `vpdpbusd`
    /// per document row, group and 16 query rows, four document rows in flight) and the scalar
    /// reference; other levels use s8_maxsim.
    void (*s8_maxsim_t)(const std::int8_t* qt, std::size_t stride, const std::int8_t* c, const float* ds,
                        std::size_t t, std::size_t d, float* out) noexcept;
    /// y[n] += sum over r < rows, t < 4 of q[4 r + t] * x[r][4 n + t], for n < count: `rows` pointers to
    /// runs of `count` documents' 4 consecutive int8 coordinates (the interleaved blocked MUVERA
    /// encodings, multivector/fde_blocks.h), `q` 4 int8 query codes per row. Exact in int32 (two's
    /// complement): callers keep |y| + rows * 4 * 128 * 128 below 2^31, so every level gives the same
    /// integers. AVX-512 VNNI: one `vpdpbusd` per 16 documents and row.
    void (*s8_dot4_rows)(const std::int8_t* q, const std::int8_t* const* x, std::size_t rows, std::size_t count,
                         std::int32_t* y) noexcept;
};

/// Int8 kernels of the active level (QUIVER_SIMD applies, as for the float kernels).
const Int8Kernels& active_int8_kernels() noexcept;
/// Int8 kernels of `level` (nullptr when the CPU cannot run them). At AVX-512 level `vnni` = false
/// forces the 16-bit multiply-add table, so tests cover both.
const Int8Kernels* int8_kernels_for(SimdLevel level, bool vnni = true) noexcept;

}  // namespace quiver::simd
