// PLACEHOLDER: replaced by the real bindings for the elementwise family.
#include <pybind11/pybind11.h>
namespace dlcore::bind {
void bind_elementwise(pybind11::module_& m) {}
}  // namespace dlcore::bind
