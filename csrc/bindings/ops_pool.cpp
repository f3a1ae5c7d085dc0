// PLACEHOLDER: replaced by the real bindings for the pool family.
#include <pybind11/pybind11.h>
namespace dlcore::bind {
void bind_pool(pybind11::module_& m) {}
}  // namespace dlcore::bind
