// PLACEHOLDER: replaced by the real bindings for the gemm family.
#include <pybind11/pybind11.h>
namespace dlcore::bind {
void bind_gemm(pybind11::module_& m) {}
}  // namespace dlcore::bind
