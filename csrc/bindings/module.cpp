// dlcore._C: build information, ISA selection, threads, CUDA status, and the op bindings
// (one bind_<family>() per csrc/bindings/ops_<family>.cpp).
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/checks.h"
#include "core/cpu_features.h"
#include "core/host_cache.h"
#include "core/registry.h"

namespace py = pybind11;

namespace dlcore::bind {
void bind_elementwise(py::module_& m);
void bind_reduce(py::module_& m);
void bind_loss(py::module_& m);
void bind_nn(py::module_& m);
void bind_gemm(py::module_& m);
void bind_conv(py::module_& m);
void bind_pool(py::module_& m);
void bind_rnn(py::module_& m);
void bind_optim(py::module_& m);
// _C.cuda: csrc/bindings/cuda_<family>.cpp (each registers nothing without CUDA)
void bind_cuda_runtime(py::module_& cuda);
void bind_cuda_elementwise(py::module_& cuda);
void bind_cuda_reduce(py::module_& cuda);
void bind_cuda_nn(py::module_& cuda);
void bind_cuda_gemm(py::module_& cuda);
void bind_cuda_gemm_tc(py::module_& cuda);
void bind_cuda_conv(py::module_& cuda);
void bind_cuda_rnn(py::module_& cuda);
}  // namespace dlcore::bind

namespace {

dlcore::Isa parse_isa(const std::string& name) {
  for (int i = 0; i < dlcore::kNumIsas; ++i)
    if (name == dlcore::isa_name(static_cast<dlcore::Isa>(i))) return static_cast<dlcore::Isa>(i);
  throw py::value_error("set_cpu_isa: unknown ISA '" + name + "', expected generic, avx2 or avx512");
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "dlcore native kernels (private: use the dlcore package)";
  m.attr("__version__") = DLCORE_VERSION;

  m.def("cpu_isa", [] { return std::string(dlcore::isa_name(dlcore::active_isa())); },
        "The ISA whose kernels are active.");
  m.def("best_cpu_isa", [] { return std::string(dlcore::isa_name(dlcore::detect_best_isa())); },
        "The highest ISA this CPU supports.");
  m.def("set_cpu_isa", [](const std::string& name) { dlcore::set_active_isa(parse_isa(name)); },
        "Switch the active ISA (only to one the CPU supports).");
  m.def("isa_supported", [](const std::string& name) { return dlcore::isa_supported(parse_isa(name)); });
  m.def("compiled_isas", [] {
    std::vector<std::string> out;
    for (int i = 0; i < dlcore::kNumIsas; ++i) out.push_back(dlcore::isa_name(static_cast<dlcore::Isa>(i)));
    return out;
  });
  m.def("kernel_slots", &dlcore::kernel_slot_names, "The kernel list's slot names, in order.");
  m.def("cpu_brand", &dlcore::cpu_brand);

  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
    omp_set_num_threads(n);
  });
  m.def("get_num_threads", [] { return omp_get_max_threads(); });

  m.def("host_cache_stats", [] {
    const dlcore::host_cache::Stats s = dlcore::host_cache::stats();
    py::dict d;
    d["cached_bytes"] = s.cached_bytes;
    d["in_use_bytes"] = s.in_use_bytes;
    d["limit_bytes"] = s.limit_bytes;
    d["hits"] = s.hits;
    d["misses"] = s.misses;
    return d;
  }, "The host cache's counters (csrc/core/host_cache.h).");
  m.def("host_cache_release", &dlcore::host_cache::release_all,
        "Frees every cached host block; returns the bytes freed.");
  m.def(
      "host_empty",
      [](const std::vector<int64_t>& shape, const py::object& dtype_like) -> py::array {
        const py::dtype dtype = py::dtype::from_args(dtype_like);
        for (int64_t d : shape)
          if (d < 0) throw py::value_error("host_empty: dimensions must be >= 0, got " + std::to_string(d));
        if (dtype.equal(py::dtype::of<float>())) return dlcore::bind::empty<float>(shape);
        if (dtype.equal(py::dtype::of<double>())) return dlcore::bind::empty<double>(shape);
        throw py::type_error("host_empty: dtype must be float32 or float64, got " + py::str(dtype).cast<std::string>());
      },
      py::arg("shape"), py::arg("dtype"),
      "An uninitialised C-contiguous float32/float64 array whose memory, from 64 KiB on, comes from the host "
      "cache (for large buffers the Python layer hands to kernels).");

  dlcore::bind::bind_elementwise(m);
  dlcore::bind::bind_reduce(m);
  dlcore::bind::bind_loss(m);
  dlcore::bind::bind_nn(m);
  dlcore::bind::bind_gemm(m);
  dlcore::bind::bind_conv(m);
  dlcore::bind::bind_pool(m);
  dlcore::bind::bind_rnn(m);
  dlcore::bind::bind_optim(m);

  py::module_ cuda = m.def_submodule("cuda", "CUDA runtime and kernels (empty but for is_built without CUDA)");
  dlcore::bind::bind_cuda_runtime(cuda);
  dlcore::bind::bind_cuda_elementwise(cuda);
  dlcore::bind::bind_cuda_reduce(cuda);
  dlcore::bind::bind_cuda_nn(cuda);
  dlcore::bind::bind_cuda_gemm(cuda);
  dlcore::bind::bind_cuda_gemm_tc(cuda);
  dlcore::bind::bind_cuda_conv(cuda);
  dlcore::bind::bind_cuda_rnn(cuda);
}
