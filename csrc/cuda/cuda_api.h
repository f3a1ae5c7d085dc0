// The CUDA side as seen from host C++ (no CUDA types here, so g++-compiled bindings can
// include it). Only built when DLCORE_WITH_CUDA is defined.
#pragma once
#include <cstdint>
#include <string>

namespace dlcore::cuda {

// Number of usable devices; 0 when there is no driver or no device (never throws).
int device_count();
// "<name> (sm_XY, N MiB)" for a device; throws std::runtime_error if it does not exist.
std::string device_name(int device);
// Fills n floats with `value` on the device with the fill kernel, copies them back and
// returns their sum: a launch check for the build. Throws std::runtime_error on any
// CUDA error, naming the kernel.
double fill_check(int64_t n, float value);

}  // namespace dlcore::cuda
