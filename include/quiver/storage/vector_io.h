/// @file vector_io.h
/// @brief Reading and writing vector files: fvecs / ivecs / bvecs (TEXMEX), .npy (float32 C order;
/// float64 converted), and JSONL (`{"id": "x" | 7, "vector": [ ... ]}` per line).
///
/// Every reader validates: a consistent dimension on every row, no NaN or infinity, a non-empty file,
/// and the format's own framing. Errors name the file and the row or line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"

namespace quiver::storage {

enum class VectorFormat : std::uint8_t { kFvecs, kIvecs, kBvecs, kNpy, kJsonl };

/// Picks the format from the file name (.fvecs .ivecs .bvecs .npy .jsonl/.ndjson).
Result<VectorFormat> format_from_path(const std::string& path);

/// Vectors and, for JSONL, the ids given in the file (empty when the format has none).
struct VectorSet {
    Matrix<float> vectors;
    std::vector<std::string> ids;  ///< one per row when present; integers are kept as their decimal text
};

struct ReadOptions {
    std::size_t max_rows = 0;        ///< 0 = all
    bool allow_non_finite = false;   ///< reject NaN/Inf unless set
};

/// Reads vectors in the format named by the path's extension.
Result<VectorSet> read_vectors(const std::string& path, const ReadOptions& options = {});
/// Reads an ivecs file (e.g. ground truth).
Result<Matrix<std::int32_t>> read_ivecs(const std::string& path, std::size_t max_rows = 0);

Status write_fvecs(const std::string& path, MatrixView<float> m);
Status write_ivecs(const std::string& path, MatrixView<std::int32_t> m);
Status write_npy(const std::string& path, MatrixView<float> m);
/// One JSON object per row: {"id": ids[i] or i, "vector": [...]}.
Status write_jsonl(const std::string& path, MatrixView<float> m, const std::vector<std::string>& ids);

/// Checks every value is finite; the error names the first bad row and column.
Status check_finite(MatrixView<float> m, const std::string& what);

}  // namespace quiver::storage
