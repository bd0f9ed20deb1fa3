// Vector files: fvecs / ivecs / bvecs / npy / JSONL (storage/vector_io.h).
#include "common.h"

#include <pybind11/stl.h>

#include "quiver/storage/vector_io.h"

namespace quiver::python {

void bind_io(py::module_& m) {
    m.def(
        "read_vectors",
        [](const std::string& path, std::size_t max_rows, bool allow_non_finite) {
            storage::VectorSet set = unwrap(without_gil([&] {
                return storage::read_vectors(path, {.max_rows = max_rows, .allow_non_finite = allow_non_finite});
            }));
            const auto rows = static_cast<py::ssize_t>(set.vectors.rows);
            const auto dim = static_cast<py::ssize_t>(set.vectors.dim);
            py::object ids = py::none();
            if (!set.ids.empty()) ids = py::cast(set.ids);
            return py::make_tuple(to_numpy(std::move(set.vectors.values), {rows, dim}), ids);
        },
        py::arg("path"), py::arg("max_rows") = 0, py::arg("allow_non_finite") = false,
        R"doc(Reads a vector file by extension: .fvecs, .bvecs, .npy (float32/float64) or .jsonl.

Returns ``(vectors, ids)``: a float32 array of shape (rows, dim), and the ids of a JSONL file (a list of
str) or None. ``max_rows`` = 0 reads all rows. Non-finite values are an InvalidArgumentError unless
``allow_non_finite``.)doc");
    m.def(
        "read_ivecs",
        [](const std::string& path, std::size_t max_rows) {
            auto r = storage::read_ivecs(path, max_rows);
            auto mat = unwrap(std::move(r));
            const auto rows = static_cast<py::ssize_t>(mat.rows);
            const auto dim = static_cast<py::ssize_t>(mat.dim);
            return to_numpy(std::move(mat.values), {rows, dim});
        },
        py::arg("path"), py::arg("max_rows") = 0, "Reads an .ivecs file (ground truth) as an int32 array.");
    m.def(
        "write_vectors",
        [](const std::string& path, const py::handle& vectors) {
            FloatInput in = float_matrix(vectors, "vectors");
            const bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
            unwrap(without_gil(
                [&] { return npy ? storage::write_npy(path, in.view) : storage::write_fvecs(path, in.view); }));
        },
        py::arg("path"), py::arg("vectors"),
        "Writes a float32 matrix as .npy (by extension) or .fvecs (any other name).");
}

}  // namespace quiver::python
