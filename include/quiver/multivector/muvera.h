/// @file muvera.h
/// @brief MUVERA fixed dimensional encodings (Dhulipala et al., NeurIPS 2024): a multi-vector set
/// becomes one vector whose inner product with another set's encoding approximates Chamfer similarity,
/// so a single-vector MIPS index finds multi-vector candidates. See ../shared/research/algorithms.md
/// section 2 and docs/multivector.md.
///
/// Encoding, per repetition r of `r_reps` (independent random draws):
///   - SimHash partition: k_sim Gaussian hyperplanes g_1..g_ksim; token x goes to partition
///     phi(x) = sum_i [<g_i, x> > <g_i, c>] << i (plain binary ids, B = 2^k_sim partitions), where c
///     is the centre set by `set_center` (0 by default, the paper's hyperplanes through the origin).
///     Token embeddings such as GloVe share a common direction; hyperplanes through their mean split
///     them evenly instead of sending most tokens to one partition;
///   - inner projection psi(x) = S x / sqrt(d_proj) with S a random +-1 matrix (d_proj x dim), or the
///     identity when d_proj = 0 (then the block width is dim);
///   - query:    block k = sum of psi(q) over query tokens in partition k (empty blocks stay 0);
///   - document: block k = mean of psi(p) over document tokens in partition k; with
///     fill_empty_partitions, an empty block takes psi(p*) for the token p* whose SimHash bits differ
///     from k's in the fewest positions (first such token on ties).
/// The r_reps blocks are concatenated (r_reps * B * width values). With d_final > 0 a Count-Sketch
/// maps coordinate i to bucket h(i) < d_final with sign s(i): out[h(i)] += s(i) * fde[i].
///
/// With identity projection and no final projection every document block is a mean of (or one of)
/// the document's tokens, so <F_q(Q), F_doc(P)> / r_reps <= CH(Q, P) exactly; the paper's theorem 2.1
/// bounds the gap for unit vectors with high probability (tested in tests/multivector/).
///
/// The random matrices are drawn once from `seed` (splitmix64 + Box-Muller) and stored with an index,
/// so queries and documents always use the same draws. Thread-safety: immutable after create/read;
/// encode calls are const and safe concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"
#include "quiver/storage/file_format.h"

namespace quiver::multivector {

struct MuveraParams {
    std::size_t k_sim = 4;        ///< SimHash hyperplanes per repetition (B = 2^k_sim partitions); 0..16
    std::size_t d_proj = 16;      ///< inner projection width; 0 = identity (width = dim)
    std::size_t r_reps = 10;      ///< independent repetitions
    bool fill_empty_partitions = true;  ///< documents only
    std::size_t d_final = 0;      ///< Count-Sketch output size; 0 = no final projection
    std::uint64_t seed = 1;
};

class Muvera {
public:
    /// kInvalidArgument on dim = 0, k_sim > 16, r_reps = 0, or an encoding wider than 2^28 values.
    static Result<Muvera> create(std::size_t dim, const MuveraParams& params);

    std::size_t dim() const noexcept { return dim_; }
    const MuveraParams& params() const noexcept { return params_; }
    /// Width of one partition block (d_proj, or dim for the identity).
    std::size_t block_width() const noexcept { return params_.d_proj == 0 ? dim_ : params_.d_proj; }
    /// Length before the final projection: r_reps * 2^k_sim * block_width.
    std::size_t raw_dim() const noexcept { return params_.r_reps * (std::size_t{1} << params_.k_sim) * block_width(); }
    /// Length of an encoding: d_final, or raw_dim().
    std::size_t fde_dim() const noexcept { return params_.d_final > 0 ? params_.d_final : raw_dim(); }

    /// Writes fde_dim() floats to `out`. tokens.dim must equal dim() (the caller checks).
    void encode_query(MatrixView<float> tokens, float* out) const;
    void encode_document(MatrixView<float> tokens, float* out) const;

    /// Moves the SimHash hyperplanes through `center` (dim floats, e.g. the mean document token); the
    /// same partition function then serves documents and queries. Call before encoding.
    void set_center(const float* center);

    /// The SimHash partition of `x` in repetition `rep` (for tests).
    std::uint32_t partition(std::size_t rep, const float* x) const noexcept;

    /// Parameters and random draws, so an index file carries them.
    Status write(storage::FileWriter& w) const;
    static Result<Muvera> read(storage::BinaryReader& r);

private:
    void encode(MatrixView<float> tokens, bool document, float* out) const;

    std::size_t dim_ = 0;
    MuveraParams params_;
    std::vector<float> hyperplanes_;      // r_reps x k_sim x dim
    std::vector<float> offsets_;          // r_reps x k_sim: <g_i, center>
    std::vector<float> projection_;       // r_reps x d_proj x dim, +-1 (empty for the identity)
    std::vector<std::uint32_t> bucket_;   // raw_dim, when d_final > 0
    std::vector<std::int8_t> sign_;       // raw_dim, when d_final > 0
};

}  // namespace quiver::multivector
