/// @file matrix_view.h
/// @brief The one layout contract for batches of vectors: row-major, component j of row i is
/// `data[i * dim + j]`. Views do not own memory; `Matrix<T>` does.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace quiver {

template <class T>
struct MatrixView {
    const T* data = nullptr;
    std::size_t rows = 0;
    std::size_t dim = 0;

    const T* row_ptr(std::size_t i) const noexcept { return data + i * dim; }
    std::span<const T> row(std::size_t i) const noexcept { return {data + i * dim, dim}; }
    std::size_t size() const noexcept { return rows * dim; }
    bool empty() const noexcept { return rows == 0; }
    /// Rows [begin, begin + count).
    MatrixView slice(std::size_t begin, std::size_t count) const noexcept {
        return {data + begin * dim, count, dim};
    }
};

/// An owning row-major matrix.
template <class T>
struct Matrix {
    std::vector<T> values;
    std::size_t rows = 0;
    std::size_t dim = 0;

    Matrix() = default;
    Matrix(std::size_t r, std::size_t d) : values(r * d), rows(r), dim(d) {}

    T* row_ptr(std::size_t i) noexcept { return values.data() + i * dim; }
    const T* row_ptr(std::size_t i) const noexcept { return values.data() + i * dim; }
    MatrixView<T> view() const noexcept { return {values.data(), rows, dim}; }
    operator MatrixView<T>() const noexcept { return view(); }  // NOLINT: views are cheap
};

}  // namespace quiver
