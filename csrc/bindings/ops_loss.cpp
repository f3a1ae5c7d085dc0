// PLACEHOLDER: replaced by the real bindings for the loss family.
#include <pybind11/pybind11.h>
namespace dlcore::bind {
void bind_loss(pybind11::module_& m) {}
}  // namespace dlcore::bind
