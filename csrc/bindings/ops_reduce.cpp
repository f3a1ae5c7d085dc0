// PLACEHOLDER: replaced by the real bindings for the reduce family.
#include <pybind11/pybind11.h>
namespace dlcore::bind {
void bind_reduce(pybind11::module_& m) {}
}  // namespace dlcore::bind
