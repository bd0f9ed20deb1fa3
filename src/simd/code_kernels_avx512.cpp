// AVX-512 (F/BW/DQ/VL) code kernels. Called only when the CPU and OS support them. The hamming kernel
// with VPOPCNTDQ lives in code_kernels_avx512_vpopcnt.cpp (its own flag); without it this level uses
// the AVX2 popcount.
#include <immintrin.h>

#include "simd/code_kernels_avx512_inl.h"
#include "simd/code_kernels_impl.h"

namespace quiver::simd::avx512 {
namespace {

inline __m512 u8x16_to_ps(__m128i bytes) noexcept { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)); }

inline __m128i unpack_nibbles(const std::uint8_t* c) noexcept {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c));
    const __m128i mask = _mm_set1_epi8(0x0F);
    return _mm_unpacklo_epi8(_mm_and_si128(b, mask), _mm_and_si128(_mm_srli_epi16(b, 4), mask));
}

inline __mmask16 tail_mask(std::size_t n) noexcept { return static_cast<__mmask16>((1u << n) - 1u); }

float u8_dot(const float* w, const std::uint8_t* c, std::size_t d) noexcept {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i),
                             u8x16_to_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i))), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16),
                             u8x16_to_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i + 16))), s1);
    }
    for (; i < d; i += 16) {
        const std::size_t n = d - i < 16 ? d - i : 16;
        const __mmask16 m = tail_mask(n);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), u8x16_to_ps(_mm_maskz_loadu_epi8(m, c + i)), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float u8_l2(const float* a, const float* s, const std::uint8_t* c, std::size_t d) noexcept {
    __m512 acc = _mm512_setzero_ps();
    for (std::size_t i = 0; i < d; i += 16) {
        const std::size_t n = d - i < 16 ? d - i : 16;
        const __mmask16 m = tail_mask(n);
        const __m512 t = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, s + i), u8x16_to_ps(_mm_maskz_loadu_epi8(m, c + i)),
                                          _mm512_maskz_loadu_ps(m, a + i));
        acc = _mm512_fmadd_ps(t, t, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

inline float nib(const std::uint8_t* c, std::size_t i) noexcept {
    return static_cast<float>((c[i >> 1] >> ((i & 1) * 4)) & 0xFu);
}

float u4_dot(const float* w, const std::uint8_t* c, std::size_t d) noexcept {
    __m512 acc = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), u8x16_to_ps(unpack_nibbles(c + i / 2)), acc);
    float r = _mm512_reduce_add_ps(acc);
    for (; i < d; ++i) r += w[i] * nib(c, i);
    return r;
}

float u4_l2(const float* a, const float* s, const std::uint8_t* c, std::size_t d) noexcept {
    __m512 acc = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        const __m512 t = _mm512_fnmadd_ps(_mm512_loadu_ps(s + i), u8x16_to_ps(unpack_nibbles(c + i / 2)),
                                          _mm512_loadu_ps(a + i));
        acc = _mm512_fmadd_ps(t, t, acc);
    }
    float r = _mm512_reduce_add_ps(acc);
    for (; i < d; ++i) {
        const float t = a[i] - s[i] * nib(c, i);
        r += t * t;
    }
    return r;
}

float lut8_sum(const float* lut, const std::uint8_t* code, std::size_t m) noexcept {
    __m512 s = _mm512_setzero_ps();
    __m512i base = _mm512_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 2560, 2816, 3072,
                                     3328, 3584, 3840);
    const __m512i step = _mm512_set1_epi32(4096);
    std::size_t j = 0;
    for (; j + 16 <= m; j += 16) {
        const __m512i idx =
            _mm512_add_epi32(base, _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + j))));
        s = _mm512_add_ps(s, _mm512_i32gather_ps(idx, lut, 4));
        base = _mm512_add_epi32(base, step);
    }
    float r = _mm512_reduce_add_ps(s);
    for (; j < m; ++j) r += lut[j * 256 + code[j]];
    return r;
}

// Two sub-codes per 512-bit shuffle: lanes (lo nibbles s, hi nibbles s, lo s+1, hi s+1) against
// (table s, table s, table s+1, table s+1); widened to u16 the low half is codes 0..31 of s, the high
// half codes 0..31 of s+1.
// Four sub-quantisers per step: one 64-byte load of their codes and one of their four 16-entry tables
// (a table per 128-bit lane, where vpshufb looks up), the low and high nibbles (codes 0-15 and 16-31)
// looked up in place. The looked-up bytes are summed as 16-bit words (FAISS's fast-scan trick):
// `even` adds each byte pair as one word (low byte + 256 x high byte, wrapping), `odd` the high bytes
// alone, and the even codes' sums are even - (odd << 8), exact modulo 2^16 and so exact while the true
// sum fits u16 (the contract). A last pair of sub-quantisers takes the two-at-a-time step.
void lut4_scan32(const std::uint8_t* block, const std::uint8_t* lut, std::size_t m,
                 std::uint16_t* out) noexcept {
    const __m512i mask = _mm512_set1_epi8(0x0F);
    __m512i lo_even = _mm512_setzero_si512(), lo_odd = lo_even, hi_even = lo_even, hi_odd = lo_even;
    std::size_t s = 0;
    for (; s + 4 <= m; s += 4) {
        const __m512i c = _mm512_loadu_si512(block + s * 16);
        const __m512i t = _mm512_loadu_si512(lut + s * 16);
        const __m512i rl = _mm512_shuffle_epi8(t, _mm512_and_si512(c, mask));
        const __m512i rh = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), mask));
        lo_even = _mm512_add_epi16(lo_even, rl);
        lo_odd = _mm512_add_epi16(lo_odd, _mm512_srli_epi16(rl, 8));
        hi_even = _mm512_add_epi16(hi_even, rh);
        hi_odd = _mm512_add_epi16(hi_odd, _mm512_srli_epi16(rh, 8));
    }
    // Lane sums: 8 words per accumulator, word p = code 2p (even) or 2p + 1 (odd) of its half.
    auto lanes = [](__m512i v) {
        const __m256i h = _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
        return _mm_add_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    };
    const __m128i le = _mm_sub_epi16(lanes(lo_even), _mm_slli_epi16(lanes(lo_odd), 8));
    const __m128i lo = lanes(lo_odd);
    const __m128i he = _mm_sub_epi16(lanes(hi_even), _mm_slli_epi16(lanes(hi_odd), 8));
    const __m128i ho = lanes(hi_odd);
    __m512i acc = _mm512_castsi128_si512(_mm_unpacklo_epi16(le, lo));      // codes 0-7
    acc = _mm512_inserti32x4(acc, _mm_unpackhi_epi16(le, lo), 1);          // codes 8-15
    acc = _mm512_inserti32x4(acc, _mm_unpacklo_epi16(he, ho), 2);          // codes 16-23
    acc = _mm512_inserti32x4(acc, _mm_unpackhi_epi16(he, ho), 3);          // codes 24-31
    for (; s + 2 <= m; s += 2) {
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + s * 16));  // s, s+1
        const __m512i bb = _mm512_castsi256_si512(b);
        // (b_s, b_s, b_s1, b_s1)
        const __m512i dup = _mm512_shuffle_i64x2(bb, bb, _MM_SHUFFLE(1, 1, 0, 0));
        const __m512i shifted = _mm512_srli_epi16(dup, 4);
        // lanes 0,2 take the low nibbles, lanes 1,3 the high ones.
        const __m512i idx = _mm512_and_si512(_mm512_mask_blend_epi64(0xCC, dup, shifted), mask);
        const __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + s * 16));
        const __m512i tt = _mm512_castsi256_si512(t);
        const __m512i tab = _mm512_shuffle_i64x2(tt, tt, _MM_SHUFFLE(1, 1, 0, 0));
        const __m512i r = _mm512_shuffle_epi8(tab, idx);
        acc = _mm512_add_epi16(acc, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(r)));
        acc = _mm512_add_epi16(acc, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(r, 1)));
    }
    _mm512_storeu_si512(out, acc);
}

// Without VNNI: u8 x s8 widened to 16 bits, vpmaddwd into int32 (exact; see the AVX2 kernel).
std::int32_t u8s8_dot(const std::uint8_t* c, const std::int8_t* q, std::size_t d) noexcept {
    __m512i acc = _mm512_setzero_si512();
    for (std::size_t i = 0; i < d; i += 32) {
        const std::size_t n = d - i < 32 ? d - i : 32;
        const __mmask32 m = n == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << n) - 1u);
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c + i)),
                                                      _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, q + i))));
    }
    return _mm512_reduce_add_epi32(acc);
}

// Four codes per pass over the query, 32 dimensions a chunk: the query chunk is widened once, each
// code's chunk is widened and multiplied in pairs (vpmaddwd, exact as in u8s8_dot), and the four
// accumulators are reduced together.
void u8s8_dot_batch(const std::uint8_t* const* codes, std::size_t n, const std::int8_t* q, std::size_t d,
                    std::int32_t* out) noexcept {
    for (std::size_t j = 0; j < n; j += 4) {
        // A last group of 1-3 codes repeats its last code (scored, not stored).
        const std::size_t left = n - j < 4 ? n - j : 4;
        const std::uint8_t* c0 = codes[j];
        const std::uint8_t* c1 = codes[j + (left > 1 ? 1 : 0)];
        const std::uint8_t* c2 = codes[j + (left > 2 ? 2 : left - 1)];
        const std::uint8_t* c3 = codes[j + (left > 3 ? 3 : left - 1)];
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (std::size_t i = 0; i < d; i += 32) {
            const std::size_t dl = d - i < 32 ? d - i : 32;
            const __mmask32 m = dl == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << dl) - 1u);
            const __m512i qv = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, q + i));
            a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c0 + i)), qv));
            a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c1 + i)), qv));
            a2 = _mm512_add_epi32(a2, _mm512_madd_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c2 + i)), qv));
            a3 = _mm512_add_epi32(a3, _mm512_madd_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c3 + i)), qv));
        }
        const __m128i sums = reduce4_epi32(a0, a1, a2, a3);
        if (left == 4) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), sums);
        } else {
            alignas(16) std::int32_t tmp[4];
            _mm_store_si128(reinterpret_cast<__m128i*>(tmp), sums);
            for (std::size_t t = 0; t < left; ++t) out[j + t] = tmp[t];
        }
    }
}

}  // namespace

const CodeKernels kCodeKernels{SimdLevel::kAvx512, false, false, &u8_dot, &u8_l2, &u4_dot, &u4_l2,
                               &avx2::hamming, &lut8_sum, &lut4_scan32, &u8s8_dot, &u8s8_dot_batch};
const CodeKernels kCodeKernelsPopcnt{SimdLevel::kAvx512, true, false, &u8_dot, &u8_l2, &u4_dot, &u4_l2,
                                     &avx512_vpopcnt::hamming, &lut8_sum, &lut4_scan32, &u8s8_dot, &u8s8_dot_batch};

}  // namespace quiver::simd::avx512
