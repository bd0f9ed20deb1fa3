/// @file safetensors.h
/// @brief Read-only access to `.safetensors` files (Hugging Face weights), memory-mapped.
///
/// Format: u64 little-endian header length N, then N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
/// then the tensor bytes (offsets relative to the end of the header). Every entry is validated on
/// open: known dtype, byte size = product(shape) * dtype size, offsets inside the file.
/// Readable dtypes: F32, F16, BF16 (converted to float32), F64, I8, I32, I64 (I8/I32/I64 via `to_int64`
/// or converted to float for static models).
///
/// Thread-safety: immutable after open; views stay valid while the SafeTensors object lives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/storage/file_format.h"

namespace quiver::encode {

enum class TensorDtype : std::uint8_t { kF32, kF16, kBF16, kF64, kI8, kI32, kI64 };

std::string_view to_string(TensorDtype d) noexcept;

struct TensorInfo {
    TensorDtype dtype = TensorDtype::kF32;
    std::vector<std::size_t> shape;
    std::span<const std::byte> bytes;  ///< raw little-endian data inside the mapping

    std::size_t numel() const noexcept;
};

class SafeTensors {
public:
    [[nodiscard]] static Result<SafeTensors> open(const std::string& path);

    bool contains(const std::string& name) const noexcept { return tensors_.count(name) != 0; }
    /// kNotFound naming the tensor and the file when absent.
    [[nodiscard]] Result<const TensorInfo*> find(const std::string& name) const;
    /// The tensor as float32 (F32/F16/BF16/F64/I8/I32 converted). When `expected_shape` is non-empty the
    /// shape must match exactly (kInvalidArgument naming both shapes).
    [[nodiscard]] Result<std::vector<float>> to_float(const std::string& name,
                                                      const std::vector<std::size_t>& expected_shape = {}) const;
    /// Integer tensors (I8/I32/I64) as int64.
    [[nodiscard]] Result<std::vector<std::int64_t>> to_int64(const std::string& name) const;
    const std::map<std::string, TensorInfo>& tensors() const noexcept { return tensors_; }
    const std::string& path() const noexcept { return file_.path(); }

private:
    storage::MappedFile file_;
    std::map<std::string, TensorInfo> tensors_;
};

/// "[384, 1536]".
std::string shape_string(const std::vector<std::size_t>& shape);

}  // namespace quiver::encode
