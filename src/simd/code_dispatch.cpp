#include "simd/code_kernels_impl.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define QUIVER_X86 1
#endif

namespace quiver::simd {
namespace {

bool read_vpopcntdq() noexcept {
#ifdef QUIVER_X86
    // The AVX-512 level already proved the OS saves ZMM state; only the feature bit is left to read.
    if (detected_simd_level() < SimdLevel::kAvx512) return false;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    return (ecx >> 14) & 1u;  // CPUID.(EAX=7,ECX=0):ECX[14] AVX512_VPOPCNTDQ
#else
    return false;
#endif
}

bool read_vnni() noexcept {
#ifdef QUIVER_X86
    if (detected_simd_level() < SimdLevel::kAvx512) return false;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    return (ecx >> 11) & 1u;  // CPUID.(EAX=7,ECX=0):ECX[11] AVX512_VNNI
#else
    return false;
#endif
}

// An AVX-512 table with the VNNI u8s8_dot and u8s8_dot_batch.
CodeKernels with_vnni(const CodeKernels& k) noexcept {
    CodeKernels v = k;
    v.vnni = true;
    v.u8s8_dot = &avx512_vnni::u8s8_dot;
    v.u8s8_dot_batch = &avx512_vnni::u8s8_dot_batch;
    return v;
}

}  // namespace

bool has_avx512_vpopcntdq() noexcept {
    static const bool has = read_vpopcntdq();
    return has;
}

bool has_avx512_vnni() noexcept {
    static const bool has = read_vnni();
    return has;
}

const CodeKernels* code_kernels_for(SimdLevel level, bool vpopcntdq, bool vnni) noexcept {
    if (level > detected_simd_level()) return nullptr;
    switch (level) {
        case SimdLevel::kScalar: return &scalar::kCodeKernels;
        case SimdLevel::kAvx2: return &avx2::kCodeKernels;
        case SimdLevel::kAvx512: {
            const bool pop = vpopcntdq && has_avx512_vpopcntdq();
            if (vnni && has_avx512_vnni()) {
                static const CodeKernels vnni_plain = with_vnni(avx512::kCodeKernels);
                static const CodeKernels vnni_pop = with_vnni(avx512::kCodeKernelsPopcnt);
                return pop ? &vnni_pop : &vnni_plain;
            }
            return pop ? &avx512::kCodeKernelsPopcnt : &avx512::kCodeKernels;
        }
    }
    return nullptr;
}

const CodeKernels& active_code_kernels() noexcept {
    static const CodeKernels* k = code_kernels_for(active_simd_level());
    return *k;
}

}  // namespace quiver::simd
