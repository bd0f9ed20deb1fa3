/// @file code_kernels.h
/// @brief Kernels over compressed vector codes (scalar quantisation, lookup tables, binary codes),
/// dispatched once at run time like the float kernels (kernels.h): one table per level, scalar as the
/// reference, AVX2 and AVX-512 in their own translation units. Resolve the table once per index.
///
/// Code layouts (the contract the index codecs rely on):
///   u8 codes     one byte per dimension.
///   s8 query     one signed byte per dimension (an SQ8 query quantised once per search, index/codec.h
///                Codec::int8_query), multiplied with u8 codes exactly in int32.
///   u4 codes     two dimensions per byte: dimension 2j in the low nibble of byte j, 2j+1 in the high
///                nibble (an odd last dimension leaves the high nibble 0).
///   binary       `words` little-endian u64 words, bit i of the code is bit (i % 64) of word i / 64.
///   lut8         `m` bytes, each an index into its own 256-entry float table (PQ 8-bit, or any code
///                read a byte at a time).
///   fast-scan    a block of 32 codes of `m` 4-bit sub-codes (m even): for sub-code s, 16 bytes, byte j
///                holding code j's nibble in the low half and code j+16's nibble in the high half.
/// All kernels are pure and thread-safe; no alignment is required.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quiver/simd/kernels.h"

namespace quiver::simd {

struct CodeKernels {
    SimdLevel level;
    /// True when `hamming` uses AVX-512 VPOPCNTDQ (else the AVX2 nibble-table popcount at AVX-512 level).
    bool vpopcntdq;
    /// True when `u8s8_dot` uses AVX-512 VNNI `vpdpbusd` (else 16-bit multiply-adds, exact alike).
    bool vnni;
    /// sum_i w[i] * c[i] over u8 codes.
    float (*u8_dot)(const float* w, const std::uint8_t* c, std::size_t d) noexcept;
    /// sum_i (a[i] - s[i] * c[i])^2 over u8 codes.
    float (*u8_l2)(const float* a, const float* s, const std::uint8_t* c, std::size_t d) noexcept;
    /// The same over u4 codes (d dimensions, (d + 1) / 2 bytes).
    float (*u4_dot)(const float* w, const std::uint8_t* c, std::size_t d) noexcept;
    float (*u4_l2)(const float* a, const float* s, const std::uint8_t* c, std::size_t d) noexcept;
    /// popcount(a xor b) over `words` u64 words.
    std::uint64_t (*hamming)(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) noexcept;
    /// sum_j lut[j * 256 + code[j]] for j < m.
    float (*lut8_sum)(const float* lut, const std::uint8_t* code, std::size_t m) noexcept;
    /// Fast-scan: out[j] = sum_s lut[s * 16 + nibble(code j, sub-code s)] for the 32 codes of `block`
    /// (m even; the sum must fit u16, i.e. m * max(lut) < 65536).
    void (*lut4_scan32)(const std::uint8_t* block, const std::uint8_t* lut, std::size_t m,
                        std::uint16_t* out) noexcept;
    /// sum_i c[i] * q[i] over u8 codes and an s8 query, exact: |sum| <= 255 * 128 * d fits int32 for
    /// d <= 65536 (the codecs' dimension limit).
    std::int32_t (*u8s8_dot)(const std::uint8_t* c, const std::int8_t* q, std::size_t d) noexcept;
    /// out[j] = u8s8_dot(codes[j], q, d) for j < n, exactly: the batched form for graph walks. Codes
    /// are scored four at a time with the query loaded once per chunk and the four horizontal sums
    /// reduced together (one call per expanded node instead of one per neighbour).
    void (*u8s8_dot_batch)(const std::uint8_t* const* codes, std::size_t n, const std::int8_t* q, std::size_t d,
                           std::int32_t* out) noexcept;
};

/// True when the CPU and OS run AVX-512 VPOPCNTDQ.
bool has_avx512_vpopcntdq() noexcept;
/// True when the CPU and OS run AVX-512 VNNI.
bool has_avx512_vnni() noexcept;
/// Code kernels of the active level (QUIVER_SIMD applies, as for the float kernels).
const CodeKernels& active_code_kernels() noexcept;
/// Code kernels of `level` (nullptr when the CPU cannot run them). At AVX-512 level, `vpopcntdq` =
/// false forces the AVX2 popcount and `vnni` = false the 16-bit u8s8_dot (so tests cover every table).
const CodeKernels* code_kernels_for(SimdLevel level, bool vpopcntdq = true, bool vnni = true) noexcept;

}  // namespace quiver::simd
