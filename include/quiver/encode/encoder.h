/// @file encoder.h
/// @brief The Encoder interface: text in, embeddings out (dense, sparse term weights, or multi-vector).
///
/// Implementations: BertEncoder (BERT-family transformers from a Hugging Face folder: dense, SPLADE,
/// ColBERT), Model2VecEncoder and WordVectorEncoder (static models), HashingEncoder (deterministic,
/// no model; for tests of other modules). `load_encoder` picks the implementation from a folder.
///
/// Layout: dense output row i is text i (row-major `Matrix<float>`); sparse output i is text i with
/// term ids ascending; multi-vector output i is a `Matrix<float>` with one row per kept token.
///
/// Thread-safety: `info()` and `term()` are safe concurrently; `encode` must not be called concurrently
/// on one encoder (it parallelises internally over its own thread pool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"
#include "quiver/simd/kernels.h"

namespace quiver {
class ProgressBar;
}  // namespace quiver

namespace quiver::encode {

/// Queries and documents may be encoded differently (prefixes, ColBERT markers and masking).
enum class EncodeRole : std::uint8_t { kQuery, kDocument };
enum class OutputKind : std::uint8_t { kDense, kSparse, kMultiVector };

std::string_view to_string(OutputKind k) noexcept;
/// "dense" | "sparse" | "multivector".
Result<OutputKind> parse_output_kind(std::string_view s);

struct EncoderInfo {
    std::string name;                 ///< folder name or a description
    std::string family;               ///< "bert" | "model2vec" | "word-vectors" | "hashing"
    std::size_t dim = 0;              ///< dense dimension
    std::size_t sparse_dim = 0;       ///< sparse term space (vocabulary size) when kSparse is offered
    std::size_t multivector_dim = 0;  ///< per-token dimension when kMultiVector is offered
    std::vector<OutputKind> outputs;  ///< kinds this encoder produces
    bool normalized = false;          ///< dense output has unit L2 norm
    simd::Metric metric = simd::Metric::kCosine;  ///< the metric the model was trained for
    std::size_t max_length = 0;       ///< token limit per text (0 = none)
};

/// Non-zero term weights, ids ascending (vocabulary ids of the model's tokenizer).
struct SparseVector {
    std::vector<std::uint32_t> ids;
    std::vector<float> weights;
};

struct Embeddings {
    OutputKind kind = OutputKind::kDense;
    Matrix<float> dense;                ///< kDense: rows = texts, dim = info().dim
    std::vector<SparseVector> sparse;   ///< kSparse: one per text
    std::vector<Matrix<float>> multi;   ///< kMultiVector: one per text, rows = kept tokens
    std::size_t num_tokens = 0;         ///< tokens processed (after truncation), for throughput reports
};

struct EncodeOptions {
    EncodeRole role = EncodeRole::kDocument;
    OutputKind kind = OutputKind::kDense;
    ProgressBar* progress = nullptr;  ///< advanced by one per text encoded, if set
};

class Encoder {
public:
    virtual ~Encoder() = default;
    virtual const EncoderInfo& info() const noexcept = 0;
    /// Encodes `texts` (UTF-8; invalid UTF-8 is kInvalidArgument naming the text index). Asking for a
    /// kind not in info().outputs is kInvalidArgument.
    [[nodiscard]] virtual Result<Embeddings> encode(std::span<const std::string_view> texts,
                                                    const EncodeOptions& options) = 0;
    /// The vocabulary token of a sparse term id (for printing SPLADE vectors); empty if unknown.
    virtual std::string_view term(std::uint32_t id) const noexcept {
        (void)id;
        return {};
    }
};

/// Options for `load_encoder`; each implementation reads what applies to it.
struct LoadOptions {
    std::size_t threads = 0;       ///< worker threads (0 = all cores)
    std::size_t batch = 32;        ///< sequences per forward pass (transformers)
    std::size_t max_length = 512;  ///< tokens per text including special tokens (capped by the model)
    std::optional<std::string> query_prefix;     ///< overrides the model's query prompt
    std::optional<std::string> document_prefix;  ///< overrides the model's document prompt
    std::size_t sparse_top_k = 0;  ///< SPLADE: keep the k largest weights per text (0 = all non-zero)
    bool sif = false;              ///< word vectors: SIF weighting a / (a + p(w)) instead of a plain mean
    double sif_a = 1e-3;           ///< SIF smoothing constant
    /// Transformers: run the linear layers as dynamic int8 products (weights quantised per output
    /// channel at load, activations per row at run time; VNNI where the CPU has it). Faster, and
    /// within about 0.99 cosine of float32 (docs/encoders.md reports the drift).
    bool int8 = false;
};

/// Loads the model in `dir`, detecting its family:
///   config.json with model_type "model2vec" (or a StaticEmbedding modules.json) -> Model2VecEncoder;
///   config.json + model.safetensors (BERT-family)                             -> BertEncoder;
///   vocab.txt + base.fvecs (or vectors.fvecs / vectors.npy)                  -> WordVectorEncoder.
/// Errors name the folder and the missing or inconsistent file.
[[nodiscard]] Result<std::unique_ptr<Encoder>> load_encoder(const std::string& dir, const LoadOptions& options = {});

/// A deterministic encoder with no model: each lower-cased alphanumeric word is hashed (FNV-1a,
/// seeded) to a bucket and a sign; the dense vector is the L2-normalised sum (zero for empty text);
/// the sparse vector holds bucket counts. Same text -> same vector on every platform.
class HashingEncoder final : public Encoder {
public:
    explicit HashingEncoder(std::size_t dim, std::uint64_t seed = 0);
    const EncoderInfo& info() const noexcept override { return info_; }
    Result<Embeddings> encode(std::span<const std::string_view> texts, const EncodeOptions& options) override;

private:
    EncoderInfo info_;
    std::uint64_t seed_;
};

}  // namespace quiver::encode
