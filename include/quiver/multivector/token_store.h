/// @file token_store.h
/// @brief Per-document token-vector matrices (ColBERT-style multi-vectors), float32 or int8 codes,
/// in memory or viewed in place from a mapped file.
///
/// Layout: `offsets[N+1]` (u64, token rows of document i are [offsets[i], offsets[i+1])), then the
/// rows, row-major, `dim` values each:
///   - kFloat32: the vectors as given (float32);
///   - kInt8:    per token row a float32 scale s = max_j |x_j| / 127 and codes c_j = round(x_j / s)
///               (symmetric scalar quantisation; a row decodes to c_j * s, error <= s / 2 per value).
/// Documents may have no tokens (they score nothing and are never returned by a search).
///
/// File: container kind 'MVTS' (docs/multivector.md); the same section layout is embedded in the
/// multi-vector index file. Reading validates the header, CRC, offsets (start 0, monotone, end at the
/// row count), section sizes and int8 scales (finite, >= 0) before any row is used; damage is kDataLoss
/// naming the file.
///
/// Thread-safety: immutable after build/open; every const member is safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"
#include "quiver/storage/buffer.h"
#include "quiver/storage/file_format.h"

namespace quiver::multivector {

enum class TokenCodec : std::uint8_t { kFloat32 = 0, kInt8 = 1 };

std::string_view to_string(TokenCodec c) noexcept;
/// "float32" | "int8".
Result<TokenCodec> parse_token_codec(std::string_view s);

inline constexpr std::uint32_t kTokenStoreFileKind = storage::fourcc("MVTS");

struct TokenStoreOpenOptions {
    bool in_memory = false;  ///< copy the rows into RAM instead of viewing the mapping (page cache)
};

class TokenStore {
public:
    inline static constexpr std::uint32_t kFormatVersion = 1;

    TokenStore() = default;
    TokenStore(TokenStore&&) noexcept = default;
    TokenStore& operator=(TokenStore&&) noexcept = default;

    std::size_t size() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
    std::size_t dim() const noexcept { return dim_; }
    TokenCodec codec() const noexcept { return codec_; }
    std::size_t total_tokens() const noexcept { return offsets_.empty() ? 0 : offsets_[offsets_.size() - 1]; }
    std::size_t tokens(std::size_t doc) const noexcept { return offsets_[doc + 1] - offsets_[doc]; }
    /// Row-major float rows of `doc` (kFloat32 only; nullptr otherwise).
    const float* float_rows(std::size_t doc) const noexcept {
        return codec_ == TokenCodec::kFloat32 ? floats_.data() + offsets_[doc] * dim_ : nullptr;
    }
    /// Row-major int8 codes and per-row scales of `doc` (kInt8 only; nullptr otherwise).
    const std::int8_t* int8_codes(std::size_t doc) const noexcept {
        return codec_ == TokenCodec::kInt8 ? codes_.data() + offsets_[doc] * dim_ : nullptr;
    }
    const float* int8_scales(std::size_t doc) const noexcept {
        return codec_ == TokenCodec::kInt8 ? scales_.data() + offsets_[doc] : nullptr;
    }
    /// Decodes rows [first, first + count) of the whole store (any codec) into `out` (count * dim floats).
    void decode_rows(std::size_t first, std::size_t count, float* out) const noexcept;
    /// Decodes the tokens of `doc` into `out` (tokens(doc) * dim floats).
    void decode(std::size_t doc, float* out) const noexcept { decode_rows(offsets_[doc], tokens(doc), out); }
    /// The first token row of `doc` in the whole store.
    std::size_t first_row(std::size_t doc) const noexcept { return offsets_[doc]; }

    /// Bytes of the token rows (and int8 scales) plus the offsets.
    std::size_t bytes() const noexcept { return offsets_.bytes() + floats_.bytes() + codes_.bytes() + scales_.bytes(); }

    /// Appends the store's sections to `w` (codec, dim, offsets, rows).
    Status write(storage::FileWriter& w) const;
    /// Reads what write() wrote from a payload of `file`, validating every section; views the
    /// mapping (which the caller keeps alive) unless `options.in_memory`.
    static Result<TokenStore> read(storage::BinaryReader& r, const TokenStoreOpenOptions& options = {});

    /// A standalone 'MVTS' file (atomically replaced).
    Status save(const std::string& path) const;
    static Result<TokenStore> open(const std::string& path, const TokenStoreOpenOptions& options = {});

private:
    friend class TokenStoreBuilder;

    std::size_t dim_ = 0;
    TokenCodec codec_ = TokenCodec::kFloat32;
    storage::Buffer<std::uint64_t> offsets_;
    storage::Buffer<float> floats_;       // kFloat32: total_tokens * dim
    storage::Buffer<std::int8_t> codes_;  // kInt8: total_tokens * dim
    storage::Buffer<float> scales_;       // kInt8: total_tokens
    std::shared_ptr<storage::MappedFile> mapping_;  // set by open()
};

/// The int8 code of one row (the kInt8 layout above): writes `dim` codes round(x_j / s), clamped to
/// [-127, 127], and returns the scale s = max_j |x_j| / 127 (1 for an all-zero row).
float quantize_int8_row(const float* x, std::size_t dim, std::int8_t* codes) noexcept;

/// Collects documents in order (document i is the i-th add), then produces a TokenStore.
/// Not thread-safe.
class TokenStoreBuilder {
public:
    TokenStoreBuilder(std::size_t dim, TokenCodec codec);
    /// Appends one document; rows must have `dim` columns and finite values (kInvalidArgument otherwise,
    /// leaving the builder unchanged). Zero rows is an empty document.
    Status add(MatrixView<float> tokens);
    std::size_t size() const noexcept { return offsets_.size() - 1; }
    TokenStore finish() &&;

private:
    std::size_t dim_;
    TokenCodec codec_;
    std::vector<std::uint64_t> offsets_{0};
    std::vector<float> floats_;
    std::vector<std::int8_t> codes_;
    std::vector<float> scales_;
};

/// Documents of a multi-vector JSONL file: one object per line, `{"id": "...", "vectors": [[...], ...]}`
/// as `quiver encode --kind multivector` writes. Ids must be unique and non-empty; every row must have
/// the same dimension. Errors name the file and line.
struct MultiVectorSet {
    std::vector<std::string> ids;
    std::vector<Matrix<float>> docs;
    std::size_t dim = 0;
};
Result<MultiVectorSet> read_multivector_jsonl(const std::string& path, std::size_t max_docs = 0);

}  // namespace quiver::multivector
