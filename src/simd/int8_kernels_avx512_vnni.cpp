// AVX-512 VNNI int8 kernels. vpdpbusd multiplies unsigned by signed bytes, so one operand is biased:
// (a ^ 0x80) reads as a + 128, and dot(a, b) = dpbusd(a ^ 0x80, b) - 128 * sum(b), all exact in int32.
// Compiled with -mavx512vnni; used only when CPUID says so.
// GCC 12.2 reports the AVX-512 intrinsics' deliberately undefined pass-through operands
// (_mm512_undefined_*) as uninitialised once they inline into these loops (GCC bug 105593, fixed in
// 12.3); the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>
#include <limits>

#include "simd/int8_kernels_impl.h"

namespace quiver::simd::avx512_vnni {
namespace {

inline __mmask64 tail_mask(std::size_t k, std::size_t d) noexcept {
    const std::size_t n = d - k < 64 ? d - k : 64;
    return n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1u;
}

// Biased bytes of a (a + 128 as unsigned); bytes past d read as 0 (the matching b bytes are 0 too).
inline __m512i biased(const std::int8_t* a, std::size_t k, __mmask64 mask) noexcept {
    return _mm512_maskz_mov_epi8(mask, _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, a + k), _mm512_set1_epi8(-128)));
}

std::int32_t s8_dot(const std::int8_t* a, const std::int8_t* b, std::size_t d) noexcept {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512(), sum = _mm512_setzero_si512();
    for (std::size_t k = 0; k < d; k += 64) {
        const __mmask64 mask = tail_mask(k, d);
        const __m512i bv = _mm512_maskz_loadu_epi8(mask, b + k);
        acc = _mm512_dpbusd_epi32(acc, biased(a, k, mask), bv);
        sum = _mm512_dpbusd_epi32(sum, ones, bv);
    }
    return _mm512_reduce_add_epi32(acc) - 128 * _mm512_reduce_add_epi32(sum);
}

void s8_maxsim(const std::int8_t* q, std::size_t m, const std::int8_t* c, const float* ds, std::size_t t,
               std::size_t d, float* out) noexcept {
    for (std::size_t i = 0; i < m; ++i) out[i] = -std::numeric_limits<float>::infinity();
    const __m512i ones = _mm512_set1_epi8(1);
    for (std::size_t j = 0; j < t; ++j) {
        const std::int8_t* row = c + j * d;
        const float scale = ds[j];
        // The bias correction depends on the document row only: 128 * sum(c_j).
        __m512i sum = _mm512_setzero_si512();
        for (std::size_t k = 0; k < d; k += 64) {
            sum = _mm512_dpbusd_epi32(sum, ones, _mm512_maskz_loadu_epi8(tail_mask(k, d), row + k));
        }
        const std::int32_t bias = 128 * _mm512_reduce_add_epi32(sum);
        std::size_t i = 0;
        for (; i + 4 <= m; i += 4) {
            const std::int8_t* q0 = q + i * d;
            __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
            __m512i a2 = _mm512_setzero_si512(), a3 = _mm512_setzero_si512();
            for (std::size_t k = 0; k < d; k += 64) {
                const __mmask64 mask = tail_mask(k, d);
                const __m512i cv = _mm512_maskz_loadu_epi8(mask, row + k);
                a0 = _mm512_dpbusd_epi32(a0, biased(q0, k, mask), cv);
                a1 = _mm512_dpbusd_epi32(a1, biased(q0 + d, k, mask), cv);
                a2 = _mm512_dpbusd_epi32(a2, biased(q0 + 2 * d, k, mask), cv);
                a3 = _mm512_dpbusd_epi32(a3, biased(q0 + 3 * d, k, mask), cv);
            }
            const float v0 = static_cast<float>(_mm512_reduce_add_epi32(a0) - bias) * scale;
            const float v1 = static_cast<float>(_mm512_reduce_add_epi32(a1) - bias) * scale;
            const float v2 = static_cast<float>(_mm512_reduce_add_epi32(a2) - bias) * scale;
            const float v3 = static_cast<float>(_mm512_reduce_add_epi32(a3) - bias) * scale;
            if (v0 > out[i]) out[i] = v0;
            if (v1 > out[i + 1]) out[i + 1] = v1;
            if (v2 > out[i + 2]) out[i + 2] = v2;
            if (v3 > out[i + 3]) out[i + 3] = v3;
        }
        for (; i < m; ++i) {
            __m512i acc = _mm512_setzero_si512();
            for (std::size_t k = 0; k < d; k += 64) {
                const __mmask64 mask = tail_mask(k, d);
                acc = _mm512_dpbusd_epi32(acc, biased(q + i * d, k, mask), _mm512_maskz_loadu_epi8(mask, row + k));
            }
            const float v = static_cast<float>(_mm512_reduce_add_epi32(acc) - bias) * scale;
            if (v > out[i]) out[i] = v;
        }
    }
}

// Transposed MaxSim: the document's four codes of a group broadcast (biased to unsigned: c + 128)
// against 16 query rows' four codes of that group; each lane then holds sum (c + 128) q, and
// 128 * (the query row's code sum) is subtracted once per document row. Four document rows at a time
// share each group's query vectors and keep four dpbusd chains in flight.
template <int kRows, int kBlocks>
inline void maxsim_t_rows(const std::int8_t* qt, std::size_t stride, const std::int8_t* c, const float* ds,
                          std::size_t d, const __m512i* corr, __m512* best) noexcept {
    const std::size_t full = d / 4;
    const __m512i flip = _mm512_set1_epi8(-128);
    __m512i acc[kRows][kBlocks];
    for (int r = 0; r < kRows; ++r) {
        for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_setzero_si512();
    }
    auto step = [&](std::size_t g, const std::int32_t* words) {
        __m512i qv[kBlocks];
        for (int b = 0; b < kBlocks; ++b) qv[b] = _mm512_loadu_si512(qt + (g * stride + 16 * b) * 4);
        for (int r = 0; r < kRows; ++r) {
            const __m512i w = _mm512_xor_si512(_mm512_set1_epi32(words[r]), flip);
            for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], w, qv[b]);
        }
    };
    std::int32_t words[kRows];
    for (std::size_t g = 0; g < full; ++g) {
        for (int r = 0; r < kRows; ++r) std::memcpy(&words[r], c + r * d + 4 * g, 4);
        step(g, words);
    }
    if (d % 4 != 0) {  // the last group: bytes past d read as 0 (their query codes are 0)
        for (int r = 0; r < kRows; ++r) {
            words[r] = 0;
            std::memcpy(&words[r], c + r * d + 4 * full, d % 4);
        }
        step(full, words);
    }
    for (int r = 0; r < kRows; ++r) {
        const __m512 scale = _mm512_set1_ps(ds[r]);
        for (int b = 0; b < kBlocks; ++b) {
            const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][b], corr[b])), scale);
            best[b] = _mm512_max_ps(best[b], v);
        }
    }
}

template <int kBlocks>
void maxsim_t_block(const std::int8_t* qt, std::size_t stride, const std::int8_t* c, const float* ds, std::size_t t,
                    std::size_t d, float* out) noexcept {
    // 128 * (sum of each query row's codes), per lane.
    const std::size_t groups = (d + 3) / 4;
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i corr[kBlocks];
    for (int b = 0; b < kBlocks; ++b) {
        __m512i s = _mm512_setzero_si512();
        for (std::size_t g = 0; g < groups; ++g) s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(qt + (g * stride + 16 * b) * 4));
        corr[b] = _mm512_slli_epi32(s, 7);
    }
    __m512 best[kBlocks];
    for (int b = 0; b < kBlocks; ++b) best[b] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    std::size_t j = 0;
    for (; j + 4 <= t; j += 4) maxsim_t_rows<4, kBlocks>(qt, stride, c + j * d, ds + j, d, corr, best);
    for (; j < t; ++j) maxsim_t_rows<1, kBlocks>(qt, stride, c + j * d, ds + j, d, corr, best);
    for (int b = 0; b < kBlocks; ++b) _mm512_storeu_ps(out + 16 * b, best[b]);
}

void s8_maxsim_t(const std::int8_t* qt, std::size_t stride, const std::int8_t* c, const float* ds, std::size_t t,
                 std::size_t d, float* out) noexcept {
    std::size_t i = 0;
    for (; i + 32 <= stride; i += 32) maxsim_t_block<2>(qt + i * 4, stride, c, ds, t, d, out + i);
    if (i < stride) maxsim_t_block<1>(qt + i * 4, stride, c, ds, t, d, out + i);
}

// One vpdpbusd per row and 16 documents: the documents' bytes biased to unsigned (c ^ 0x80 = c + 128)
// against the row's four query codes broadcast, so each lane sums (c + 128) * q over the row's four
// coordinates; 128 * (sum of all query codes) is subtracted once at the end (the products wrap in
// int32 exactly as the true sum does). 32 documents per step, masked tails.
void s8_dot4_rows(const std::int8_t* q, const std::int8_t* const* x, std::size_t rows, std::size_t count,
                  std::int32_t* y) noexcept {
    std::int32_t qsum = 0;
    for (std::size_t i = 0; i < 4 * rows; ++i) qsum += q[i];
    const __m512i bias = _mm512_set1_epi32(static_cast<std::int32_t>(128u * static_cast<std::uint32_t>(qsum)));
    const __m512i flip = _mm512_set1_epi8(-128);
    auto word = [q](std::size_t r) {
        std::int32_t w;
        std::memcpy(&w, q + 4 * r, 4);
        return _mm512_set1_epi32(w);
    };
    std::size_t n = 0;
    for (; n + 32 <= count; n += 32) {
        __m512i a0 = _mm512_loadu_si512(y + n), a1 = _mm512_loadu_si512(y + n + 16);
        for (std::size_t r = 0; r < rows; ++r) {
            const std::int8_t* c = x[r] + 4 * n;
            const __m512i w = word(r);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512(c), flip), w);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_xor_si512(_mm512_loadu_si512(c + 64), flip), w);
        }
        _mm512_storeu_si512(y + n, _mm512_sub_epi32(a0, bias));
        _mm512_storeu_si512(y + n + 16, _mm512_sub_epi32(a1, bias));
    }
    for (; n < count; n += 16) {
        const std::size_t left = count - n < 16 ? count - n : 16;
        const __mmask16 mask = left == 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << left) - 1u);
        __m512i a = _mm512_maskz_loadu_epi32(mask, y + n);
        for (std::size_t r = 0; r < rows; ++r) {
            const __m512i c = _mm512_maskz_loadu_epi32(mask, x[r] + 4 * n);
            a = _mm512_dpbusd_epi32(a, _mm512_xor_si512(c, flip), word(r));
        }
        _mm512_mask_storeu_epi32(y + n, mask, _mm512_sub_epi32(a, bias));
    }
}

}  // namespace

const Int8Kernels kInt8Kernels{SimdLevel::kAvx512, true, &s8_dot, &s8_maxsim, &s8_maxsim_t, &s8_dot4_rows};

}  // namespace quiver::simd::avx512_vnni
