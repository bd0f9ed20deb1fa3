// The extension module `quiver._quiver`; the package `quiver` (python/quiver/__init__.py) re-exports it.
#include "common.h"

#include "quiver/simd/kernels.h"

PYBIND11_MODULE(_quiver, m) {
    namespace py = pybind11;
    using namespace quiver::python;
    m.doc() = "quiver native module: dense indexes, encoders, evaluation and collections (see quiver.__doc__)";
    m.def("simd_level", [] { return std::string(quiver::simd::to_string(quiver::simd::active_simd_level())); },
          "The SIMD level the distance kernels run at: 'scalar', 'avx2' or 'avx512'.");
    m.def(
        "_view_address",
        [](const py::handle& array) {
            return reinterpret_cast<std::uintptr_t>(float_matrix(array, "array").view.data);
        },
        "Test hook: the address the bindings read a float32 array at (equal to the array's own data "
        "pointer, since inputs are viewed, not copied).");
    bind_io(m);
    bind_index(m);
    bind_sparse(m);
    bind_encode(m);
    bind_eval(m);
    bind_engine(m);
}
