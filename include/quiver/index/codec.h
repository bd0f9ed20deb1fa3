/// @file codec.h
/// @brief Vector codecs: compressed codes for dense vectors, with train / encode / decode and a
/// per-query distance estimator over codes. The flat and IVF code indexes (code_index.h) use any codec;
/// a graph index can walk codes through `CodeEstimator::distance`.
///
/// Codecs (CodecSpec strings):
///   none          float32: the code is the vector itself (4 * dim bytes, exact distances)
///   sq8, sq4      scalar quantisation, per-dimension [min, max] ranges, 8 or 4 bits per dimension
///   pq<M>x<b>     product quantisation, M sub-quantisers of 2^b centroids (b = 8, or b = 4 with
///                 fast-scan: codes stored in transposed blocks of 32, distances from u8 lookup tables
///                 in registers)
///   rabitq<b>     RaBitQ, b = 1 (sign bits) or extended b = 2, 4, 8 bits per dimension, after a random
///                 orthogonal rotation; estimates carry a per-code error bound
///   binary<b>     sign codes (b = 1) or BEBR-style b-plane residual binary codes, compared by Hamming
///                 distance against the query binarised the same way
///
/// Conventions. A codec is built for a dimension and a metric. Distances follow simd::Metric: squared L2,
/// or 1 - inner product. kCosine behaves as kInnerProduct: callers pass unit vectors (as the indexes do).
/// Inputs to `train`, `encode` and `estimator` are rows of `dim()` floats, already normalised for cosine.
///
/// Storage layout. A code is `code_size()` bytes. Indexes store codes "packed": in blocks of
/// `block_size()` codes (1 for every codec but fast-scan PQ4, which uses 32), `packed_bytes(n)` bytes for
/// n codes, converted with pack / unpack. `CodeEstimator::scan` reads the packed layout;
/// `CodeEstimator::distance` reads one row-major code.
///
/// Thread-safety: after `train`, every const method may be called concurrently. A CodeEstimator belongs
/// to one thread (it holds per-query tables). `train` needs exclusive access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"
#include "quiver/simd/kernels.h"
#include "quiver/storage/file_format.h"

namespace quiver::index {

enum class CodecKind : std::uint8_t { kNone = 0, kSq8 = 1, kSq4 = 2, kPq = 3, kRabitq = 4, kBinary = 5 };

struct CodecSpec {
    CodecKind kind = CodecKind::kNone;
    std::uint32_t m = 0;     ///< PQ sub-quantisers (0 for other codecs)
    std::uint32_t bits = 0;  ///< bits per dimension (sq, rabitq), per sub-code (pq), planes (binary)

    /// Parses "none", "sq8", "sq4", "pq<M>x<4|8>", "rabitq<1|2|4|8>", "binary<1..8>".
    static Result<CodecSpec> parse(std::string_view s);
    std::string to_string() const;
    bool operator==(const CodecSpec&) const = default;
};

/// A query in integer form, for walks that compute many estimates per query (HNSW on SQ8 codes): the
/// estimate for a row-major code c is
///     bias + Codec::code_term(c) - scale * sum_j weights[j] * c[j]
/// with the sum exact in int32 (simd::CodeKernels::u8s8_dot, VNNI where present). The weights are the
/// query's per-dimension weights rounded to [-127, 127] with one scale, so the estimate differs from
/// the codec's float estimate by at most scale / 2 * sum_j c[j].
struct Int8Query {
    std::vector<std::int8_t> weights;  ///< dim() weights
    float scale = 0;
    float bias = 0;
};

/// Distance estimates from one query to codes. Not thread-safe: one per query and thread.
class CodeEstimator {
public:
    virtual ~CodeEstimator() = default;
    /// Estimated distance to one row-major code.
    virtual float distance(const std::uint8_t* code) const noexcept = 0;
    /// Estimates for the `n` codes of `packed` (the codec's packed layout, starting at a block boundary):
    /// out[i] for code i. `err` (may be null) receives a bound on |estimate - true distance| per code
    /// when the codec has one (`Codec::has_error_bound`; RaBitQ's holds with high probability), else 0.
    virtual void scan(const std::uint8_t* packed, std::size_t n, float* out, float* err) const noexcept;
    /// The codes of `packed` (as for scan) whose estimate may be at most `limit`: writes their indices
    /// (ascending) to `sel` and their estimates, exactly as scan computes them, to `out`, and returns
    /// their count. Every code whose estimate is <= limit is included; a few just above it may be too
    /// (callers compare again). Both arrays hold `n` entries. The default scans and compacts; PQ
    /// fast-scan compares its integer sums before converting any to float.
    virtual std::size_t scan_below(const std::uint8_t* packed, std::size_t n, float limit, std::uint32_t* sel,
                                   float* out) const noexcept;

protected:
    explicit CodeEstimator(std::size_t code_size) : code_size_(code_size) {}
    std::size_t code_size_;
};

class Codec {
public:
    virtual ~Codec() = default;

    /// An untrained codec (kNone needs no training). kInvalidArgument for a dimension out of 1..65536,
    /// or a spec the dimension cannot take (PQ's M must divide dim). `seed` fixes training (k-means, rotations).
    static Result<std::unique_ptr<Codec>> create(const CodecSpec& spec, std::size_t dim, simd::Metric metric,
                                                 std::uint64_t seed = 42);
    /// Reads a codec written by `save` (kDataLoss on anything inconsistent).
    static Result<std::unique_ptr<Codec>> load(storage::BinaryReader& r);

    const CodecSpec& spec() const noexcept { return spec_; }
    std::size_t dim() const noexcept { return dim_; }
    simd::Metric metric() const noexcept { return metric_; }
    std::uint64_t seed() const noexcept { return seed_; }

    /// Bytes of one code.
    virtual std::size_t code_size() const noexcept = 0;
    /// Codes per storage block (see the file comment).
    virtual std::size_t block_size() const noexcept { return 1; }
    /// Bytes holding n packed codes (whole blocks).
    std::size_t packed_bytes(std::size_t n) const noexcept {
        const std::size_t b = block_size();
        return (n + b - 1) / b * b * code_size();
    }
    /// Row-major codes [0, n) -> packed layout (`packed_bytes(n)` bytes; padding codes are zero).
    virtual void pack(const std::uint8_t* codes, std::size_t n, std::uint8_t* packed) const;
    /// Code i of a packed array -> row-major `code`.
    virtual void unpack(const std::uint8_t* packed, std::size_t i, std::uint8_t* code) const;

    bool trained() const noexcept { return trained_; }
    /// Learns the codec's parameters from sample rows (kInvalidArgument if too few, dimension mismatch).
    virtual Status train(MatrixView<float> sample) = 0;
    /// Encodes rows (trained codec; rows.dim == dim()) into rows.rows * code_size() bytes.
    virtual void encode(MatrixView<float> rows, std::uint8_t* codes) const = 0;
    /// Reconstructs n row-major codes into n * dim() floats.
    virtual void decode(const std::uint8_t* codes, std::size_t n, float* out) const = 0;
    /// The estimator for one query (dim() floats; normalised for cosine).
    virtual std::unique_ptr<CodeEstimator> estimator(const float* query) const = 0;
    /// Whether the codec has an integer query form (only SQ8 has one).
    virtual bool has_int8_query() const noexcept { return false; }
    /// Integer form of the query (see Int8Query), reusing `out`'s buffer (trained codec); false when
    /// the codec has none.
    virtual bool int8_query(const float* query, Int8Query& out) const {
        (void)query;
        (void)out;
        return false;
    }
    /// Whether Int8Query estimates need a per-code term (SQ8 under L2: the reconstruction's squared
    /// norm about the range minima); when false, code_term is 0 for every code.
    virtual bool has_code_term() const noexcept { return false; }
    /// The per-code term of Int8Query estimates (for callers to precompute once per code).
    virtual float code_term(const std::uint8_t* code) const noexcept {
        (void)code;
        return 0;
    }
    /// True when `CodeEstimator::scan` reports per-code error bounds.
    virtual bool has_error_bound() const noexcept { return false; }
    /// The smallest training sample `train` accepts, and the size the indexes sample by default.
    virtual std::size_t min_train_rows() const noexcept { return 1; }
    virtual std::size_t default_train_rows() const noexcept { return 65536; }
    /// Bytes of trained parameters held in memory (codebooks, ranges, rotation).
    virtual std::size_t parameter_bytes() const noexcept = 0;
    /// Appends the spec, dimension, metric, seed and trained parameters to `w`.
    Status save(storage::FileWriter& w) const;

protected:
    Codec(CodecSpec spec, std::size_t dim, simd::Metric metric, std::uint64_t seed)
        : spec_(spec), dim_(dim), metric_(metric), seed_(seed) {}
    bool is_l2() const noexcept { return metric_ == simd::Metric::kL2; }
    Status check_train(MatrixView<float> sample) const;
    virtual Status save_params(storage::FileWriter& w) const = 0;
    virtual Status load_params(storage::BinaryReader& r) = 0;

    CodecSpec spec_;
    std::size_t dim_;
    simd::Metric metric_;
    std::uint64_t seed_;
    bool trained_ = false;
};

}  // namespace quiver::index
