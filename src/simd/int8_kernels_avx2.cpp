// AVX2 int8 kernels: sign-extended 16-bit multiply-adds (vpmaddwd), exact in int32. MaxSim keeps one
// document row's 16-byte chunks hot against four query rows at a time.
#include <immintrin.h>

#include <limits>

#include "simd/int8_kernels_impl.h"

namespace quiver::simd::avx2 {
namespace {

inline __m256i widen(const std::int8_t* p) noexcept {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline std::int32_t hsum(__m256i v) noexcept {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

inline std::int32_t tail_dot(const std::int8_t* a, const std::int8_t* b, std::size_t from, std::size_t d) noexcept {
    std::int32_t s = 0;
    for (std::size_t k = from; k < d; ++k) s += static_cast<std::int32_t>(a[k]) * b[k];
    return s;
}

std::int32_t s8_dot(const std::int8_t* a, const std::int8_t* b, std::size_t d) noexcept {
    __m256i acc = _mm256_setzero_si256();
    std::size_t k = 0;
    for (; k + 16 <= d; k += 16) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(widen(a + k), widen(b + k)));
    return hsum(acc) + tail_dot(a, b, k, d);
}

void s8_maxsim(const std::int8_t* q, std::size_t m, const std::int8_t* c, const float* ds, std::size_t t,
               std::size_t d, float* out) noexcept {
    for (std::size_t i = 0; i < m; ++i) out[i] = -std::numeric_limits<float>::infinity();
    const std::size_t full = d - d % 16;
    for (std::size_t j = 0; j < t; ++j) {
        const std::int8_t* row = c + j * d;
        const float scale = ds[j];
        std::size_t i = 0;
        for (; i + 4 <= m; i += 4) {
            const std::int8_t* q0 = q + i * d;
            const std::int8_t* q1 = q0 + d;
            const std::int8_t* q2 = q1 + d;
            const std::int8_t* q3 = q2 + d;
            __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
            __m256i a2 = _mm256_setzero_si256(), a3 = _mm256_setzero_si256();
            for (std::size_t k = 0; k < full; k += 16) {
                const __m256i cv = widen(row + k);
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(widen(q0 + k), cv));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(widen(q1 + k), cv));
                a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(widen(q2 + k), cv));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(widen(q3 + k), cv));
            }
            const float v0 = static_cast<float>(hsum(a0) + tail_dot(q0, row, full, d)) * scale;
            const float v1 = static_cast<float>(hsum(a1) + tail_dot(q1, row, full, d)) * scale;
            const float v2 = static_cast<float>(hsum(a2) + tail_dot(q2, row, full, d)) * scale;
            const float v3 = static_cast<float>(hsum(a3) + tail_dot(q3, row, full, d)) * scale;
            if (v0 > out[i]) out[i] = v0;
            if (v1 > out[i + 1]) out[i + 1] = v1;
            if (v2 > out[i + 2]) out[i + 2] = v2;
            if (v3 > out[i + 3]) out[i + 3] = v3;
        }
        for (; i < m; ++i) {
            const float v = static_cast<float>(s8_dot(q + i * d, row, d)) * scale;
            if (v > out[i]) out[i] = v;
        }
    }
}

}  // namespace

// Eight documents per step: their 32 bytes sign-extended to two vectors of 16-bit values (four
// documents each), multiplied by the row's four query codes with vpmaddwd into pair sums, and the pair
// sums of each document added once after all rows (vphaddd, then a lane permute back to document order).
void s8_dot4_rows(const std::int8_t* q, const std::int8_t* const* x, std::size_t rows, std::size_t count,
                  std::int32_t* y) noexcept {
    constexpr std::size_t kChunk = 16;
    __m256i qv[kChunk];
    for (std::size_t r0 = 0; r0 < rows; r0 += kChunk) {
        const std::size_t nr = rows - r0 < kChunk ? rows - r0 : kChunk;
        for (std::size_t r = 0; r < nr; ++r) {
            const std::int8_t* c = q + 4 * (r0 + r);
            qv[r] = _mm256_set_epi16(c[3], c[2], c[1], c[0], c[3], c[2], c[1], c[0], c[3], c[2], c[1], c[0], c[3],
                                     c[2], c[1], c[0]);
        }
        const std::int8_t* const* xr = x + r0;
        std::size_t n = 0;
        for (; n + 8 <= count; n += 8) {
            __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
            for (std::size_t r = 0; r < nr; ++r) {
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr[r] + 4 * n));
                lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)), qv[r]));
                hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)), qv[r]));
            }
            // Lanes (documents 0-3 in lo, 4-7 in hi, two pair sums each) -> one sum per document.
            const __m256i sums = _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
            __m256i* out = reinterpret_cast<__m256i*>(y + n);
            _mm256_storeu_si256(out, _mm256_add_epi32(_mm256_loadu_si256(out), sums));
        }
        for (; n < count; ++n) {
            std::int32_t s = 0;
            for (std::size_t r = 0; r < nr; ++r) {
                const std::int8_t* c = xr[r] + 4 * n;
                const std::int8_t* qr = q + 4 * (r0 + r);
                s += qr[0] * c[0] + qr[1] * c[1] + qr[2] * c[2] + qr[3] * c[3];
            }
            y[n] += s;
        }
    }
}

const Int8Kernels kInt8Kernels{SimdLevel::kAvx2, false, &s8_dot, &s8_maxsim, nullptr, &s8_dot4_rows};

}  // namespace quiver::simd::avx2
