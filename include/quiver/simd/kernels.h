/// @file kernels.h
/// @brief Float32 distance kernels, dispatched once at run time to the best instruction set present.
///
/// Levels: scalar (portable), AVX2+FMA, AVX-512 (F/BW/DQ/VL). The level is detected once (CPUID and
/// XCR0, so the OS must save the registers) and may be lowered with QUIVER_SIMD=scalar|avx2|avx512;
/// a level the CPU lacks is clamped to the best available. Resolve a `DistanceFn` when an index is
/// constructed and keep it; never look it up per call.
///
/// Distances (smaller is closer):
///   kL2          squared Euclidean distance
///   kInnerProduct 1 - <a, b>
///   kCosine       1 - <a, b> over vectors normalised at insert / query time (callers normalise)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "quiver/core/result.h"

namespace quiver::simd {

enum class Metric : std::uint8_t { kL2 = 0, kInnerProduct = 1, kCosine = 2 };
enum class SimdLevel : std::uint8_t { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

std::string_view to_string(Metric m) noexcept;
std::string_view to_string(SimdLevel l) noexcept;
/// "l2" | "ip" | "cosine" (also "euclidean", "dot", "angular").
Result<Metric> parse_metric(std::string_view s);
/// "scalar" | "avx2" | "avx512".
Result<SimdLevel> parse_simd_level(std::string_view s);

/// a, b: `dim` floats each (no alignment required). Pure and thread-safe.
using DistanceFn = float (*)(const float* a, const float* b, std::size_t dim) noexcept;
/// MaxSim maxima of one document against a query (multi-vector scoring, multivector/maxsim.h):
///   out[i] = max over j < t of  sum_k qt[k * stride + i] * doc[j * dim + k]      for i < stride,
/// where `qt` is the query transposed and zero-padded (`dim` rows of `stride` floats; stride a
/// multiple of 16; lanes past the query's rows are 0, so their maxima are 0) and `doc` holds t >= 1
/// rows of `dim` floats. `out` has `stride` floats. Each sum is fused multiply-adds in k order
/// starting from 0, so every level gives the same bits.
using MaxSimFn = void (*)(const float* qt, std::size_t stride, const float* doc, std::size_t t, std::size_t dim,
                          float* out) noexcept;
/// One level's kernels.
struct Kernels {
    SimdLevel level;
    DistanceFn l2_squared;    ///< sum (a_i - b_i)^2
    DistanceFn dot;           ///< sum a_i * b_i
    DistanceFn ip_distance;   ///< 1 - dot
    /// Squared L2 norm of `a` (dot(a, a)), used to normalise.
    float (*norm_squared)(const float* a, std::size_t dim) noexcept;
    MaxSimFn maxsim_maxima;   ///< see MaxSimFn
};

/// The best level this CPU and OS support (ignores QUIVER_SIMD).
SimdLevel detected_simd_level() noexcept;
/// The level in force: detected, lowered by QUIVER_SIMD if set. Computed once.
SimdLevel active_simd_level() noexcept;
/// Kernels of the active level.
const Kernels& active_kernels() noexcept;
/// Kernels of `level`, or nullptr when this CPU cannot run them or the build lacks them.
const Kernels* kernels_for(SimdLevel level) noexcept;

/// The distance function of `metric` at the active level (kCosine uses ip_distance).
DistanceFn distance_fn(Metric metric) noexcept;
DistanceFn distance_fn(Metric metric, const Kernels& k) noexcept;

/// Scales `v` to unit L2 norm in place; returns false (leaving v unchanged) if its norm is zero.
bool normalize(float* v, std::size_t dim) noexcept;

/// CPU features decoded from raw CPUID/XCR0 words; a pure function so tests can feed synthetic bits.
struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512dq = false;
    bool avx512vl = false;
};
CpuFeatures decode_cpu_features(std::uint32_t leaf1_ecx, std::uint32_t leaf7_ebx,
                                std::uint64_t xcr0) noexcept;
SimdLevel best_level(const CpuFeatures& f) noexcept;

}  // namespace quiver::simd
