// AVX2 code kernels. Compiled with -mavx2 -mfma -mpopcnt; called only when the CPU has them.
#include <immintrin.h>

#include "simd/code_kernels_impl.h"

namespace quiver::simd::avx2 {
namespace {

inline float hsum(__m256 v) noexcept {
    const __m128 lo = _mm256_castps256_ps128(v);
    const __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline __m256 u8x8_to_ps(__m128i bytes) noexcept { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)); }

// 8 bytes of packed nibbles -> 16 bytes, one dimension each, in dimension order.
inline __m128i unpack_nibbles(const std::uint8_t* c) noexcept {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(b, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
    return _mm_unpacklo_epi8(lo, hi);
}

inline void dot16(const float* w, __m128i c16, __m256& s0, __m256& s1) noexcept {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), u8x8_to_ps(c16), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), u8x8_to_ps(_mm_srli_si128(c16, 8)), s1);
}

inline void l2_16(const float* a, const float* s, __m128i c16, __m256& s0, __m256& s1) noexcept {
    const __m256 d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(s), u8x8_to_ps(c16), _mm256_loadu_ps(a));
    const __m256 d1 =
        _mm256_fnmadd_ps(_mm256_loadu_ps(s + 8), u8x8_to_ps(_mm_srli_si128(c16, 8)), _mm256_loadu_ps(a + 8));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
}

float u8_dot(const float* w, const std::uint8_t* c, std::size_t d) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) dot16(w + i, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i)), s0, s1);
    float r = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; ++i) r += w[i] * static_cast<float>(c[i]);
    return r;
}

float u8_l2(const float* a, const float* s, const std::uint8_t* c, std::size_t d) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) l2_16(a + i, s + i, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i)), s0, s1);
    float r = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; ++i) {
        const float t = a[i] - s[i] * static_cast<float>(c[i]);
        r += t * t;
    }
    return r;
}

inline float nib(const std::uint8_t* c, std::size_t i) noexcept {
    return static_cast<float>((c[i >> 1] >> ((i & 1) * 4)) & 0xFu);
}

float u4_dot(const float* w, const std::uint8_t* c, std::size_t d) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) dot16(w + i, unpack_nibbles(c + i / 2), s0, s1);
    float r = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; ++i) r += w[i] * nib(c, i);
    return r;
}

float u4_l2(const float* a, const float* s, const std::uint8_t* c, std::size_t d) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) l2_16(a + i, s + i, unpack_nibbles(c + i / 2), s0, s1);
    float r = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; ++i) {
        const float t = a[i] - s[i] * nib(c, i);
        r += t * t;
    }
    return r;
}

float lut8_sum(const float* lut, const std::uint8_t* code, std::size_t m) noexcept {
    __m256 s = _mm256_setzero_ps();
    __m256i base = _mm256_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792);
    const __m256i step = _mm256_set1_epi32(2048);
    std::size_t j = 0;
    for (; j + 8 <= m; j += 8) {
        const __m256i idx = _mm256_add_epi32(
            base, _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(code + j))));
        s = _mm256_add_ps(s, _mm256_i32gather_ps(lut, idx, 4));
        base = _mm256_add_epi32(base, step);
    }
    float r = hsum(s);
    for (; j < m; ++j) r += lut[j * 256 + code[j]];
    return r;
}

void lut4_scan32(const std::uint8_t* block, const std::uint8_t* lut, std::size_t m,
                 std::uint16_t* out) noexcept {
    const __m128i mask = _mm_set1_epi8(0x0F);
    __m256i acc_lo = _mm256_setzero_si256(), acc_hi = _mm256_setzero_si256();
    for (std::size_t s = 0; s < m; ++s) {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + s * 16));
        const __m128i lo = _mm_and_si128(b, mask);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
        const __m256i idx = _mm256_set_m128i(hi, lo);
        const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + s * 16)));
        const __m256i r = _mm256_shuffle_epi8(tab, idx);
        acc_lo = _mm256_add_epi16(acc_lo, _mm256_cvtepu8_epi16(_mm256_castsi256_si128(r)));
        acc_hi = _mm256_add_epi16(acc_hi, _mm256_cvtepu8_epi16(_mm256_extracti128_si256(r, 1)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), acc_lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), acc_hi);
}

// u8 x s8 widened to 16 bits and multiplied in pairs into int32 (vpmaddwd): exact, since a pair
// sums to at most 2 * 255 * 128 (vpmaddubsw would saturate at 16 bits).
std::int32_t u8s8_dot(const std::uint8_t* c, const std::int8_t* q, std::size_t d) noexcept {
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    std::size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        const __m256i cv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + i));
        const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(cv)),
                                                        _mm256_cvtepi8_epi16(_mm256_castsi256_si128(qv))));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(cv, 1)),
                                                        _mm256_cvtepi8_epi16(_mm256_extracti128_si256(qv, 1))));
    }
    if (i + 16 <= d) {
        const __m128i cv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i));
        const __m128i qv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(cv), _mm256_cvtepi8_epi16(qv)));
        i += 16;
    }
    const __m256i acc = _mm256_add_epi32(acc0, acc1);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    std::int32_t r = _mm_cvtsi128_si32(s);
    for (; i < d; ++i) r += static_cast<std::int32_t>(c[i]) * q[i];
    return r;
}

/// The four int32 totals of a0..a3 (each summed over its 8 lanes), in order.
inline __m128i reduce4(__m256i a0, __m256i a1, __m256i a2, __m256i a3) noexcept {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// Four codes per pass over the query: each 16-byte query chunk is widened once and multiplied with the
// four codes' chunks (vpmaddwd, exact as in u8s8_dot); the dimensions past the last whole chunk are
// added in scalar code.
void u8s8_dot_batch(const std::uint8_t* const* codes, std::size_t n, const std::int8_t* q, std::size_t d,
                    std::int32_t* out) noexcept {
    const std::size_t whole = d / 16 * 16;
    std::size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const std::uint8_t* c0 = codes[j];
        const std::uint8_t* c1 = codes[j + 1];
        const std::uint8_t* c2 = codes[j + 2];
        const std::uint8_t* c3 = codes[j + 3];
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (std::size_t i = 0; i < whole; i += 16) {
            const __m256i qv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i)));
            auto mul = [&](const std::uint8_t* c) {
                return _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i))),
                                         qv);
            };
            a0 = _mm256_add_epi32(a0, mul(c0));
            a1 = _mm256_add_epi32(a1, mul(c1));
            a2 = _mm256_add_epi32(a2, mul(c2));
            a3 = _mm256_add_epi32(a3, mul(c3));
        }
        alignas(16) std::int32_t r[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(r), reduce4(a0, a1, a2, a3));
        for (std::size_t i = whole; i < d; ++i) {
            r[0] += static_cast<std::int32_t>(c0[i]) * q[i];
            r[1] += static_cast<std::int32_t>(c1[i]) * q[i];
            r[2] += static_cast<std::int32_t>(c2[i]) * q[i];
            r[3] += static_cast<std::int32_t>(c3[i]) * q[i];
        }
        out[j] = r[0];
        out[j + 1] = r[1];
        out[j + 2] = r[2];
        out[j + 3] = r[3];
    }
    for (; j < n; ++j) out[j] = u8s8_dot(codes[j], q, d);
}

}  // namespace

// Popcount through a nibble table (Mula's method); shared with the AVX-512 table when VPOPCNTDQ is absent.
std::uint64_t hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) noexcept {
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                           0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i mask = _mm256_set1_epi8(0x0F);
    __m256i acc = _mm256_setzero_si256();
    std::size_t i = 0;
    for (; i + 4 <= words; i += 4) {
        const __m256i x = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)));
        const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(x, mask));
        const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), mask));
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256()));
    }
    std::uint64_t r = static_cast<std::uint64_t>(_mm256_extract_epi64(acc, 0)) +
                      static_cast<std::uint64_t>(_mm256_extract_epi64(acc, 1)) +
                      static_cast<std::uint64_t>(_mm256_extract_epi64(acc, 2)) +
                      static_cast<std::uint64_t>(_mm256_extract_epi64(acc, 3));
    for (; i < words; ++i) r += static_cast<std::uint64_t>(_mm_popcnt_u64(a[i] ^ b[i]));
    return r;
}

const CodeKernels kCodeKernels{SimdLevel::kAvx2, false, false, &u8_dot, &u8_l2, &u4_dot, &u4_l2,
                               &hamming, &lut8_sum, &lut4_scan32, &u8s8_dot, &u8s8_dot_batch};

}  // namespace quiver::simd::avx2
