// Error translation and numpy views shared by every binding area.
#include "common.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string_view>

namespace quiver::python {

void raise_error(const Error& error) {
    // Looked up on each error (errors are not the hot path); the module is imported by quiver/__init__.py
    // before the extension, so this is a dictionary hit.
    py::object make = py::module_::import("quiver.errors").attr("_from_code");
    py::object exc = make(static_cast<int>(error.code()), error.message());
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    throw py::error_already_set();
}

namespace {

std::string describe(const py::handle& obj) {
    return py::str(py::type::of(obj).attr("__name__")).cast<std::string>();
}

}  // namespace

FloatInput float_matrix(const py::handle& obj, const char* what, std::size_t dim) {
    if (!py::isinstance<py::array>(obj)) {
        throw py::type_error(fmt::format(
            "{} must be a numpy array of float32, got {} (use numpy.asarray(x, dtype=numpy.float32))", what,
            describe(obj)));
    }
    auto array = py::reinterpret_borrow<py::array>(obj);
    if (!py::array_t<float>::check_(array)) {
        throw py::type_error(fmt::format(
            "{} must have dtype float32 (native byte order), got {} (use x.astype(numpy.float32))", what,
            py::str(array.dtype()).cast<std::string>()));
    }
    if (array.ndim() != 1 && array.ndim() != 2) {
        throw py::value_error(fmt::format("{} must be 1-D (one vector) or 2-D (one vector per row), got {}-D",
                                          what, array.ndim()));
    }
    constexpr int kAligned = py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if ((array.flags() & py::array::c_style) == 0) {
        std::vector<py::ssize_t> strides(array.strides(), array.strides() + array.ndim());
        throw py::value_error(fmt::format(
            "{} must be C-contiguous (it is viewed without copying); got strides ({}) — use "
            "numpy.ascontiguousarray(x)",
            what, fmt::join(strides, ", ")));
    }
    if ((array.flags() & kAligned) == 0) {
        throw py::value_error(fmt::format(
            "{} is not aligned to 4 bytes (it is viewed without copying) — use numpy.require(x, "
            "numpy.float32, ['C', 'A'])", what));
    }
    FloatInput in;
    in.one_dimensional = array.ndim() == 1;
    const std::size_t rows = in.one_dimensional ? 1 : static_cast<std::size_t>(array.shape(0));
    const std::size_t cols = static_cast<std::size_t>(array.shape(in.one_dimensional ? 0 : 1));
    if (dim != 0 && cols != dim) {
        throw py::value_error(fmt::format("{} has {} columns, the index has dimension {}", what, cols, dim));
    }
    in.view = MatrixView<float>{static_cast<const float*>(array.data()), rows, cols};
    in.array = std::move(array);
    return in;
}

std::vector<std::uint64_t> label_vector(const py::handle& obj, const char* what) {
    // Python ints and integer arrays of any width; negative values are refused (-1 is the "no result" label).
    py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> as_int;
    py::array raw = py::array::ensure(obj);
    if (!raw) {
        throw py::type_error(fmt::format("{} must be a sequence of non-negative integers", what));
    }
    if (raw.ndim() > 1) throw py::value_error(fmt::format("{} must be 1-D, got {}-D", what, raw.ndim()));
    const char kind = raw.dtype().kind();
    if (raw.size() > 0 && kind != 'i' && kind != 'u') {
        throw py::type_error(fmt::format("{} must hold integers, got dtype {}", what,
                                         py::str(raw.dtype()).cast<std::string>()));
    }
    std::vector<std::uint64_t> out(static_cast<std::size_t>(raw.size()));
    if (kind == 'u') {
        auto u = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>::ensure(raw);
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = u.data()[i];
        return out;
    }
    as_int = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(raw);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::int64_t v = as_int.data()[i];
        if (v < 0) throw py::value_error(fmt::format("{}[{}] is negative ({}); labels are >= 0", what, i, v));
        out[i] = static_cast<std::uint64_t>(v);
    }
    return out;
}

simd::Metric parse_metric(const std::string& name) {
    if (name == "inner_product") return simd::Metric::kInnerProduct;
    if (name == "l2_squared") return simd::Metric::kL2;
    return unwrap(simd::parse_metric(name));
}

std::string metric_name(simd::Metric metric) { return std::string(simd::to_string(metric)); }

}  // namespace quiver::python
