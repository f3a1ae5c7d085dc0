// _C.cuda: build status, devices, the stream, the caching allocator (Buffer), memory stats
// and host <-> device copies. Without CUDA only is_built/device_count exist (False/0).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>

#ifdef DLCORE_WITH_CUDA
#include "cuda/runtime.h"
#endif

namespace py = pybind11;

namespace dlcore::bind {

#ifdef DLCORE_WITH_CUDA
namespace {

// A block of device memory from the caching allocator; returned to the cache when the last
// Python reference (a CudaArray and its views) goes away.
struct Buffer {
  void* ptr = nullptr;
  size_t nbytes = 0;
  int device = 0;
  Buffer(size_t n, int dev) : nbytes(n), device(dev) {
    cuda::check_device(dev, "cuda.Buffer");
    ptr = cuda::allocate(n, dev);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { cuda::release(ptr, device); }
};

// A C-contiguous host array's bytes, or ValueError naming the op.
void require_contiguous(const py::array& a, const char* op) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": the host array must be C-contiguous");
}

}  // namespace
#endif

void bind_cuda_runtime(py::module_& cuda) {
#ifdef DLCORE_WITH_CUDA
  cuda.def("is_built", [] { return true; });
  cuda.def("device_count", &cuda::device_count);
  cuda.def("device_name", &cuda::device_name, py::arg("device"));
  cuda.def("set_device", &cuda::set_device, py::arg("device"));
  cuda.def("current_device", &cuda::current_device);
  cuda.def("synchronize", &cuda::synchronize, py::arg("device"), py::call_guard<py::gil_scoped_release>(),
           "Waits for every kernel and copy queued on the device's stream; raises if one failed.");
  cuda.def("empty_cache", &cuda::empty_cache, py::call_guard<py::gil_scoped_release>(),
           "Frees the allocator's cached (unused) blocks back to the driver.");
  cuda.def("memory_stats", [](int device) {
    const cuda::MemoryStats s = cuda::memory_stats(device);
    py::dict d;
    d["allocated_bytes"] = s.allocated;
    d["max_allocated_bytes"] = s.max_allocated;
    d["reserved_bytes"] = s.reserved;
    return d;
  }, py::arg("device"));
  cuda.def("reset_peak_memory_stats", &cuda::reset_peak_memory, py::arg("device"));
  cuda.def("fill_check", [](int64_t n, float value) {
    if (cuda::device_count() == 0) throw std::runtime_error("cuda.fill_check: no CUDA device");
    return cuda::fill_check(n, value);
  });

  py::register_exception<cuda::OutOfMemory>(cuda, "OutOfMemoryError", PyExc_RuntimeError);

  py::class_<Buffer, std::shared_ptr<Buffer>>(cuda, "Buffer", "A block of device memory from the caching allocator.")
      .def(py::init<size_t, int>(), py::arg("nbytes"), py::arg("device"))
      .def_property_readonly("ptr", [](const Buffer& b) { return reinterpret_cast<uintptr_t>(b.ptr); })
      .def_property_readonly("nbytes", [](const Buffer& b) { return b.nbytes; })
      .def_property_readonly("device", [](const Buffer& b) { return b.device; });

  py::class_<cuda::Event>(cuda, "Event", "A timing event on a device's stream (cudaEvent_t).")
      .def(py::init<int>(), py::arg("device"))
      .def("record", &cuda::Event::record, "Marks the stream's current position.")
      .def("synchronize", &cuda::Event::synchronize, py::call_guard<py::gil_scoped_release>())
      .def("elapsed_ms", &cuda::Event::elapsed_ms, py::arg("end"), py::call_guard<py::gil_scoped_release>(),
           "GPU milliseconds from this event to `end` (waits for `end`).");

  cuda.def("copy_from_host", [](uintptr_t dst, const py::array& src, int device) {
    require_contiguous(src, "cuda.copy_from_host");
    const size_t n = static_cast<size_t>(src.nbytes());
    const void* from = src.data();
    py::gil_scoped_release release;
    cuda::copy_host_to_device(reinterpret_cast<void*>(dst), from, n, device);
  }, py::arg("dst"), py::arg("src"), py::arg("device"), "Copies a C-contiguous host array's bytes to dst.");
  cuda.def("copy_to_host", [](py::array& dst, uintptr_t src, int device) {
    require_contiguous(dst, "cuda.copy_to_host");
    if (!dst.writeable()) throw py::value_error("cuda.copy_to_host: the host array is read-only");
    const size_t n = static_cast<size_t>(dst.nbytes());
    void* to = dst.mutable_data();
    py::gil_scoped_release release;
    cuda::copy_device_to_host(to, reinterpret_cast<const void*>(src), n, device);
  }, py::arg("dst"), py::arg("src"), py::arg("device"), "Fills a C-contiguous host array from src (waits).");
  cuda.def("copy_device", [](uintptr_t dst, uintptr_t src, size_t nbytes, int device) {
    cuda::copy_device_to_device(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), nbytes, device);
  }, py::arg("dst"), py::arg("src"), py::arg("nbytes"), py::arg("device"), py::call_guard<py::gil_scoped_release>());
#else
  cuda.def("is_built", [] { return false; });
  cuda.def("device_count", [] { return 0; });
#endif
}

}  // namespace dlcore::bind
