// Portable code kernels; the reference the SIMD levels are tested against.
#include "simd/code_kernels_impl.h"

namespace quiver::simd::scalar {
namespace {

float u8_dot(const float* w, const std::uint8_t* c, std::size_t d) noexcept {
    float s0 = 0, s1 = 0;
    std::size_t i = 0;
    for (; i + 2 <= d; i += 2) {
        s0 += w[i] * static_cast<float>(c[i]);
        s1 += w[i + 1] * static_cast<float>(c[i + 1]);
    }
    if (i < d) s0 += w[i] * static_cast<float>(c[i]);
    return s0 + s1;
}

float u8_l2(const float* a, const float* s, const std::uint8_t* c, std::size_t d) noexcept {
    float r = 0;
    for (std::size_t i = 0; i < d; ++i) {
        const float t = a[i] - s[i] * static_cast<float>(c[i]);
        r += t * t;
    }
    return r;
}

inline unsigned nibble(const std::uint8_t* c, std::size_t i) noexcept {
    return (c[i >> 1] >> ((i & 1) * 4)) & 0xFu;
}

float u4_dot(const float* w, const std::uint8_t* c, std::size_t d) noexcept {
    float r = 0;
    for (std::size_t i = 0; i < d; ++i) r += w[i] * static_cast<float>(nibble(c, i));
    return r;
}

float u4_l2(const float* a, const float* s, const std::uint8_t* c, std::size_t d) noexcept {
    float r = 0;
    for (std::size_t i = 0; i < d; ++i) {
        const float t = a[i] - s[i] * static_cast<float>(nibble(c, i));
        r += t * t;
    }
    return r;
}

std::uint64_t hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) noexcept {
    std::uint64_t r = 0;
    for (std::size_t i = 0; i < words; ++i) r += static_cast<std::uint64_t>(__builtin_popcountll(a[i] ^ b[i]));
    return r;
}

float lut8_sum(const float* lut, const std::uint8_t* code, std::size_t m) noexcept {
    float s0 = 0, s1 = 0;
    std::size_t j = 0;
    for (; j + 2 <= m; j += 2) {
        s0 += lut[j * 256 + code[j]];
        s1 += lut[(j + 1) * 256 + code[j + 1]];
    }
    if (j < m) s0 += lut[j * 256 + code[j]];
    return s0 + s1;
}

void lut4_scan32(const std::uint8_t* block, const std::uint8_t* lut, std::size_t m,
                 std::uint16_t* out) noexcept {
    for (std::size_t j = 0; j < 32; ++j) out[j] = 0;
    for (std::size_t s = 0; s < m; ++s) {
        const std::uint8_t* b = block + s * 16;
        const std::uint8_t* l = lut + s * 16;
        for (std::size_t j = 0; j < 16; ++j) {
            out[j] = static_cast<std::uint16_t>(out[j] + l[b[j] & 0xF]);
            out[j + 16] = static_cast<std::uint16_t>(out[j + 16] + l[b[j] >> 4]);
        }
    }
}

std::int32_t u8s8_dot(const std::uint8_t* c, const std::int8_t* q, std::size_t d) noexcept {
    std::int32_t s0 = 0, s1 = 0;
    std::size_t i = 0;
    for (; i + 2 <= d; i += 2) {
        s0 += static_cast<std::int32_t>(c[i]) * q[i];
        s1 += static_cast<std::int32_t>(c[i + 1]) * q[i + 1];
    }
    if (i < d) s0 += static_cast<std::int32_t>(c[i]) * q[i];
    return s0 + s1;
}

void u8s8_dot_batch(const std::uint8_t* const* codes, std::size_t n, const std::int8_t* q, std::size_t d,
                    std::int32_t* out) noexcept {
    for (std::size_t j = 0; j < n; ++j) out[j] = u8s8_dot(codes[j], q, d);
}

}  // namespace

const CodeKernels kCodeKernels{SimdLevel::kScalar, false, false, &u8_dot, &u8_l2, &u4_dot, &u4_l2,
                               &hamming, &lut8_sum, &lut4_scan32, &u8s8_dot, &u8s8_dot_batch};

}  // namespace quiver::simd::scalar
