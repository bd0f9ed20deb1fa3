#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "simd/kernels_impl.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define QUIVER_X86 1
#endif

namespace quiver::simd {

std::string_view to_string(Metric m) noexcept {
    switch (m) {
        case Metric::kL2: return "l2";
        case Metric::kInnerProduct: return "ip";
        case Metric::kCosine: return "cosine";
    }
    return "?";
}

std::string_view to_string(SimdLevel l) noexcept {
    switch (l) {
        case SimdLevel::kScalar: return "scalar";
        case SimdLevel::kAvx2: return "avx2";
        case SimdLevel::kAvx512: return "avx512";
    }
    return "?";
}

Result<Metric> parse_metric(std::string_view s) {
    if (s == "l2" || s == "euclidean" || s == "l2sq") return Metric::kL2;
    if (s == "ip" || s == "dot" || s == "inner_product") return Metric::kInnerProduct;
    if (s == "cosine" || s == "cos" || s == "angular") return Metric::kCosine;
    return invalid_argument(fmt::format("unknown metric '{}' (expected l2, ip or cosine)", s));
}

Result<SimdLevel> parse_simd_level(std::string_view s) {
    if (s == "scalar") return SimdLevel::kScalar;
    if (s == "avx2") return SimdLevel::kAvx2;
    if (s == "avx512") return SimdLevel::kAvx512;
    return invalid_argument(fmt::format("unknown SIMD level '{}' (expected scalar, avx2 or avx512)", s));
}

CpuFeatures decode_cpu_features(std::uint32_t leaf1_ecx, std::uint32_t leaf7_ebx,
                                std::uint64_t xcr0) noexcept {
    CpuFeatures f;
    const bool osxsave = (leaf1_ecx >> 27) & 1u;
    const bool os_ymm = osxsave && (xcr0 & 0x6) == 0x6;            // XMM and YMM state
    const bool os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0;           // opmask, ZMM_Hi256, Hi16_ZMM
    const bool avx = (leaf1_ecx >> 28) & 1u;
    f.fma = os_ymm && avx && ((leaf1_ecx >> 12) & 1u);
    f.avx2 = os_ymm && avx && ((leaf7_ebx >> 5) & 1u);
    f.avx512f = os_zmm && ((leaf7_ebx >> 16) & 1u);
    f.avx512dq = os_zmm && ((leaf7_ebx >> 17) & 1u);
    f.avx512bw = os_zmm && ((leaf7_ebx >> 30) & 1u);
    f.avx512vl = os_zmm && ((leaf7_ebx >> 31) & 1u);
    return f;
}

SimdLevel best_level(const CpuFeatures& f) noexcept {
    if (f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx2 && f.fma) return SimdLevel::kAvx512;
    if (f.avx2 && f.fma) return SimdLevel::kAvx2;
    return SimdLevel::kScalar;
}

namespace {

CpuFeatures read_cpu_features() noexcept {
#ifdef QUIVER_X86
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return {};
    const std::uint32_t leaf1_ecx = ecx;
    std::uint32_t leaf7_ebx = 0;
    if (__get_cpuid_max(0, nullptr) >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        leaf7_ebx = ebx;
    }
    std::uint64_t xcr0 = 0;
    if ((leaf1_ecx >> 27) & 1u) {
        std::uint32_t lo = 0, hi = 0;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = (static_cast<std::uint64_t>(hi) << 32) | lo;
    }
    return decode_cpu_features(leaf1_ecx, leaf7_ebx, xcr0);
#else
    return {};
#endif
}

SimdLevel compute_active() noexcept {
    const SimdLevel detected = detected_simd_level();
    const char* env = std::getenv("QUIVER_SIMD");
    if (env == nullptr || *env == '\0') return detected;
    auto wanted = parse_simd_level(env);
    if (!wanted) {
        std::fprintf(stderr, "quiver: ignoring QUIVER_SIMD='%s' (expected scalar, avx2 or avx512)\n", env);
        return detected;
    }
    return *wanted < detected ? *wanted : detected;
}

}  // namespace

SimdLevel detected_simd_level() noexcept {
    static const SimdLevel level = best_level(read_cpu_features());
    return level;
}

SimdLevel active_simd_level() noexcept {
    static const SimdLevel level = compute_active();
    return level;
}

const Kernels* kernels_for(SimdLevel level) noexcept {
    if (level > detected_simd_level()) return nullptr;
    switch (level) {
        case SimdLevel::kScalar: return &scalar::kKernels;
        case SimdLevel::kAvx2: return &avx2::kKernels;
        case SimdLevel::kAvx512: return &avx512::kKernels;
    }
    return nullptr;
}

const Kernels& active_kernels() noexcept {
    static const Kernels* k = kernels_for(active_simd_level());
    return *k;
}

DistanceFn distance_fn(Metric metric, const Kernels& k) noexcept {
    return metric == Metric::kL2 ? k.l2_squared : k.ip_distance;
}

DistanceFn distance_fn(Metric metric) noexcept { return distance_fn(metric, active_kernels()); }

bool normalize(float* v, std::size_t dim) noexcept {
    // Accumulate in double: the normalised vector must not depend on the SIMD level.
    double s = 0;
    for (std::size_t i = 0; i < dim; ++i) s += static_cast<double>(v[i]) * v[i];
    if (!(s > 0)) return false;
    const double inv = 1.0 / std::sqrt(s);
    for (std::size_t i = 0; i < dim; ++i) v[i] = static_cast<float>(v[i] * inv);
    return true;
}

}  // namespace quiver::simd
