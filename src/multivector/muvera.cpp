// MUVERA fixed dimensional encodings: random draws, query/document encoding, Count-Sketch, I/O.
#include "quiver/multivector/muvera.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numbers>

#include "quiver/simd/kernels.h"
#include "quiver/storage/buffer.h"

namespace quiver::multivector {
namespace {

// splitmix64: a small, portable generator, so the same seed draws the same matrices everywhere.
class SplitMix {
public:
    explicit SplitMix(std::uint64_t seed) : s_(seed) {}
    std::uint64_t next() noexcept {
        std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in (0, 1].
    double uniform() noexcept { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }
    double gaussian() noexcept {
        const double u1 = uniform();
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    }

private:
    std::uint64_t s_;
};

}  // namespace

Result<Muvera> Muvera::create(std::size_t dim, const MuveraParams& params) {
    if (dim == 0) return invalid_argument("MUVERA: the token dimension must be positive");
    if (params.k_sim > 16) return invalid_argument(fmt::format("MUVERA: k_sim {} is above 16", params.k_sim));
    if (params.r_reps == 0) return invalid_argument("MUVERA: r_reps must be at least 1");
    Muvera m;
    m.dim_ = dim;
    m.params_ = params;
    const double raw = static_cast<double>(params.r_reps) * std::ldexp(1.0, static_cast<int>(params.k_sim)) *
                       static_cast<double>(m.block_width());
    if (raw > std::ldexp(1.0, 28) || params.d_final > (std::size_t{1} << 28)) {
        return invalid_argument(fmt::format("MUVERA: an encoding of {:.0f} values is too large", raw));
    }
    // One stream per repetition (seed + r), as the reference draws each repetition independently.
    m.hyperplanes_.resize(params.r_reps * params.k_sim * dim);
    m.projection_.resize(params.d_proj == 0 ? 0 : params.r_reps * params.d_proj * dim);
    for (std::size_t r = 0; r < params.r_reps; ++r) {
        SplitMix rng(params.seed * 0x100000001b3ULL + r);
        float* g = m.hyperplanes_.data() + r * params.k_sim * dim;
        for (std::size_t i = 0; i < params.k_sim * dim; ++i) g[i] = static_cast<float>(rng.gaussian());
        if (params.d_proj != 0) {
            float* s = m.projection_.data() + r * params.d_proj * dim;
            for (std::size_t i = 0; i < params.d_proj * dim; ++i) s[i] = (rng.next() >> 63) != 0 ? 1.0f : -1.0f;
        }
    }
    if (params.d_final > 0) {
        SplitMix rng(params.seed ^ 0x5eed5eed5eed5eedULL);
        const std::size_t n = m.raw_dim();
        m.bucket_.resize(n);
        m.sign_.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            m.bucket_[i] = static_cast<std::uint32_t>(rng.next() % params.d_final);
            m.sign_[i] = (rng.next() >> 63) != 0 ? 1 : -1;
        }
    }
    return m;
}

void Muvera::set_center(const float* center) {
    const simd::DistanceFn dot = simd::active_kernels().dot;
    offsets_.assign(params_.r_reps * params_.k_sim, 0.0f);
    for (std::size_t i = 0; i < offsets_.size(); ++i) offsets_[i] = dot(hyperplanes_.data() + i * dim_, center, dim_);
}

std::uint32_t Muvera::partition(std::size_t rep, const float* x) const noexcept {
    const simd::DistanceFn dot = simd::active_kernels().dot;
    const float* g = hyperplanes_.data() + rep * params_.k_sim * dim_;
    const float* off = offsets_.empty() ? nullptr : offsets_.data() + rep * params_.k_sim;
    std::uint32_t id = 0;
    for (std::size_t i = 0; i < params_.k_sim; ++i) {
        if (dot(g + i * dim_, x, dim_) > (off != nullptr ? off[i] : 0.0f)) id |= 1u << i;
    }
    return id;
}

void Muvera::encode_query(MatrixView<float> tokens, float* out) const { encode(tokens, false, out); }
void Muvera::encode_document(MatrixView<float> tokens, float* out) const { encode(tokens, true, out); }

void Muvera::encode(MatrixView<float> tokens, bool document, float* out) const {
    const std::size_t parts = std::size_t{1} << params_.k_sim;
    const std::size_t width = block_width();
    const std::size_t rep_width = parts * width;
    const std::size_t n = tokens.rows;
    const bool sketch = params_.d_final > 0;
    std::vector<float> raw(sketch ? raw_dim() : 0);
    float* fde = sketch ? raw.data() : out;
    std::fill_n(fde, raw_dim(), 0.0f);
    std::vector<float> projected(n * width);
    std::vector<std::uint32_t> part(n);
    std::vector<std::uint32_t> count(parts);
    const simd::DistanceFn dot = simd::active_kernels().dot;
    const float inv_sqrt = params_.d_proj == 0 ? 1.0f : 1.0f / std::sqrt(static_cast<float>(params_.d_proj));
    for (std::size_t r = 0; r < params_.r_reps; ++r) {
        float* block = fde + r * rep_width;
        for (std::size_t t = 0; t < n; ++t) {
            const float* x = tokens.row_ptr(t);
            part[t] = partition(r, x);
            float* p = projected.data() + t * width;
            if (params_.d_proj == 0) {
                std::copy_n(x, dim_, p);
            } else {
                const float* s = projection_.data() + r * params_.d_proj * dim_;
                for (std::size_t o = 0; o < params_.d_proj; ++o) p[o] = dot(s + o * dim_, x, dim_) * inv_sqrt;
            }
        }
        std::fill(count.begin(), count.end(), 0u);
        for (std::size_t t = 0; t < n; ++t) {
            float* b = block + part[t] * width;
            const float* p = projected.data() + t * width;
            for (std::size_t j = 0; j < width; ++j) b[j] += p[j];
            ++count[part[t]];
        }
        if (!document) continue;
        for (std::size_t k = 0; k < parts; ++k) {
            float* b = block + k * width;
            if (count[k] > 1) {
                const float inv = 1.0f / static_cast<float>(count[k]);
                for (std::size_t j = 0; j < width; ++j) b[j] *= inv;
            } else if (count[k] == 0 && params_.fill_empty_partitions && n > 0) {
                // The token whose SimHash bits differ from partition k's in the fewest positions.
                std::size_t best = 0;
                int best_bits = std::numeric_limits<int>::max();
                for (std::size_t t = 0; t < n; ++t) {
                    const int bits = std::popcount(part[t] ^ static_cast<std::uint32_t>(k));
                    if (bits < best_bits) {
                        best_bits = bits;
                        best = t;
                    }
                }
                std::copy_n(projected.data() + best * width, width, b);
            }
        }
    }
    if (sketch) {
        std::fill_n(out, params_.d_final, 0.0f);
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] != 0.0f) out[bucket_[i]] += sign_[i] > 0 ? raw[i] : -raw[i];
        }
    }
}

Status Muvera::write(storage::FileWriter& w) const {
    QUIVER_TRY(w.write_pod<std::uint64_t>(dim_));
    QUIVER_TRY(w.write_pod<std::uint64_t>(params_.k_sim));
    QUIVER_TRY(w.write_pod<std::uint64_t>(params_.d_proj));
    QUIVER_TRY(w.write_pod<std::uint64_t>(params_.r_reps));
    QUIVER_TRY(w.write_pod<std::uint64_t>(params_.fill_empty_partitions ? 1 : 0));
    QUIVER_TRY(w.write_pod<std::uint64_t>(params_.d_final));
    QUIVER_TRY(w.write_pod<std::uint64_t>(params_.seed));
    QUIVER_TRY(storage::write_buffer(w, std::span<const float>(hyperplanes_)));
    QUIVER_TRY(storage::write_buffer(w, std::span<const float>(offsets_)));
    QUIVER_TRY(storage::write_buffer(w, std::span<const float>(projection_)));
    QUIVER_TRY(storage::write_buffer(w, std::span<const std::uint32_t>(bucket_)));
    return storage::write_buffer(w, std::span<const std::int8_t>(sign_));
}

Result<Muvera> Muvera::read(storage::BinaryReader& r) {
    std::uint64_t v[7];
    for (auto& x : v) {
        QUIVER_ASSIGN_OR_RETURN(x, r.read_pod<std::uint64_t>());
    }
    if (v[0] == 0 || v[0] > (1u << 16) || v[1] > 16 || v[2] > (1u << 16) || v[3] == 0 || v[3] > (1u << 16) || v[4] > 1 ||
        v[5] > (1u << 28)) {
        return r.corrupt("MUVERA parameters out of range");
    }
    Muvera m;
    m.dim_ = static_cast<std::size_t>(v[0]);
    m.params_ = {.k_sim = static_cast<std::size_t>(v[1]),
                 .d_proj = static_cast<std::size_t>(v[2]),
                 .r_reps = static_cast<std::size_t>(v[3]),
                 .fill_empty_partitions = v[4] != 0,
                 .d_final = static_cast<std::size_t>(v[5]),
                 .seed = v[6]};
    if (static_cast<double>(m.params_.r_reps) * std::ldexp(1.0, static_cast<int>(m.params_.k_sim)) *
            static_cast<double>(m.block_width()) > std::ldexp(1.0, 28)) {
        return r.corrupt("MUVERA encoding size out of range");
    }
    QUIVER_ASSIGN_OR_RETURN(auto g, storage::read_buffer<float>(r, "MUVERA hyperplanes"));
    QUIVER_ASSIGN_OR_RETURN(auto off, storage::read_buffer<float>(r, "MUVERA hyperplane offsets"));
    QUIVER_ASSIGN_OR_RETURN(auto s, storage::read_buffer<float>(r, "MUVERA projection"));
    QUIVER_ASSIGN_OR_RETURN(auto b, storage::read_buffer<std::uint32_t>(r, "MUVERA sketch buckets"));
    QUIVER_ASSIGN_OR_RETURN(auto sg, storage::read_buffer<std::int8_t>(r, "MUVERA sketch signs"));
    const std::size_t sketch = m.params_.d_final > 0 ? m.raw_dim() : 0;
    if (g.size() != m.params_.r_reps * m.params_.k_sim * m.dim_ ||
        (off.size() != 0 && off.size() != m.params_.r_reps * m.params_.k_sim) ||
        s.size() != (m.params_.d_proj == 0 ? 0 : m.params_.r_reps * m.params_.d_proj * m.dim_) ||
        b.size() != sketch || sg.size() != sketch) {
        return r.corrupt("MUVERA random draws do not match the parameters");
    }
    m.hyperplanes_.assign(g.span().begin(), g.span().end());
    m.offsets_.assign(off.span().begin(), off.span().end());
    for (const float x : m.offsets_) {
        if (!std::isfinite(x)) return r.corrupt("MUVERA hyperplane offsets hold a non-finite value");
    }
    m.projection_.assign(s.span().begin(), s.span().end());
    m.bucket_.assign(b.span().begin(), b.span().end());
    m.sign_.assign(sg.span().begin(), sg.span().end());
    for (const float x : m.hyperplanes_) {
        if (!std::isfinite(x)) return r.corrupt("MUVERA hyperplanes hold a non-finite value");
    }
    for (const float x : m.projection_) {
        if (x != 1.0f && x != -1.0f) return r.corrupt("MUVERA projection holds a value other than +-1");
    }
    for (const std::int8_t x : m.sign_) {
        if (x != 1 && x != -1) return r.corrupt("MUVERA sketch holds a sign other than +-1");
    }
    for (const std::uint32_t x : m.bucket_) {
        if (x >= m.params_.d_final) return r.corrupt("MUVERA sketch bucket out of range");
    }
    return m;
}

}  // namespace quiver::multivector
