// PLACEHOLDER: replaced by the real bindings for the nn family.
#include <pybind11/pybind11.h>
namespace dlcore::bind {
void bind_nn(pybind11::module_& m) {}
}  // namespace dlcore::bind
