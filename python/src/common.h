// Private to the Python module: error translation, numpy views and the per-area binding entry points.
//
// Conventions every bind_*.cpp follows:
//   - Result/Status errors become `quiver.Error` subclasses keyed by ErrorCode (quiver/errors.py), raised
//     with the GIL held: compute under `py::gil_scoped_release`, then unwrap().
//   - numpy input is viewed, never copied: float32, C-contiguous, aligned, native byte order, else a
//     TypeError (dtype, not an array) or ValueError (layout, shape) that says how to fix it.
//   - numpy output takes ownership of the C++ vector (a capsule frees it), so results are not copied.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"
#include "quiver/simd/kernels.h"

namespace quiver::python {

namespace py = pybind11;

/// Raises the `quiver.Error` subclass for `error.code()` (sets the Python error and throws
/// py::error_already_set). Needs the GIL.
[[noreturn]] void raise_error(const Error& error);

inline void unwrap(const Status& status) {
    if (!status) raise_error(status.error());
}
inline void unwrap(Status&& status) {
    if (!status) raise_error(status.error());
}
template <class T>
T unwrap(Result<T>&& result) {
    if (!result) raise_error(result.error());
    return std::move(result).value();
}

/// Runs `fn` with the GIL released and returns what it returns (a Result to unwrap once the GIL is back).
template <class F>
auto without_gil(F&& fn) {
    py::gil_scoped_release release;
    return fn();
}

/// A float32 matrix viewed in place. `rows_1d` tells whether the input was one vector (1-D), so
/// results can be returned with the same rank.
struct FloatInput {
    py::array array;  // keeps the buffer alive for as long as the view is used
    MatrixView<float> view;
    bool one_dimensional = false;
};

/// Views `obj` as a row-major float32 matrix. `what` names the argument in errors; `dim` (if non-zero)
/// is the required number of columns.
FloatInput float_matrix(const py::handle& obj, const char* what, std::size_t dim = 0);

/// Labels from any integer sequence or array (copied: they are small), non-negative.
std::vector<std::uint64_t> label_vector(const py::handle& obj, const char* what);

/// A numpy array owning `values` (moved into a capsule; no copy).
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
    auto* owned = new std::vector<T>(std::move(values));
    py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(std::move(shape), owned->data(), free_when_done);
}

/// "l2" | "ip" | "cosine" (also "inner_product", "l2_squared") <-> Metric.
simd::Metric parse_metric(const std::string& name);
std::string metric_name(simd::Metric metric);

// One entry point per area; module.cpp calls them in this order.
void bind_io(py::module_& m);
void bind_index(py::module_& m);
void bind_encode(py::module_& m);
void bind_sparse(py::module_& m);
void bind_eval(py::module_& m);
void bind_engine(py::module_& m);

}  // namespace quiver::python
