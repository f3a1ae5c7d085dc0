// PLACEHOLDER: replaced by the real bindings for the conv family.
#include <pybind11/pybind11.h>
namespace dlcore::bind {
void bind_conv(pybind11::module_& m) {}
}  // namespace dlcore::bind
