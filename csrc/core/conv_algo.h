// Which conv2d algorithm may run which shape and direction: the one place the bindings (to
// refuse a forced algorithm with a clear message) and the CPU kernels (to follow the rule) ask.
// Geometry only, no speed: the per-shape choice among the algorithms that apply is
// conv2d.cpp's rule.
#pragma once
#include <string>

#include "core/kernel_args.h"

namespace dlcore {

enum class ConvDirection { kForward, kBackwardInput, kBackwardWeight };

// "auto", "gemm", "direct", "winograd".
const char* conv_algo_name(ConvAlgo algo);

// The algorithm named `name`; false when there is none.
bool parse_conv_algo(const std::string& name, ConvAlgo& algo);

// Empty when `algo` can compute direction `dir` of shape `s` (elements float32 when
// `is_float32`, else float64); otherwise why not, as a phrase for an error message.
std::string conv_algo_refusal(ConvAlgo algo, ConvDirection dir, const Conv2dShape& s,
                              bool is_float32);

// Winograd F(2x2, 3x3) fits: 3x3 kernel, stride 1, dilation 1, padding <= 2 (backward_input
// is then a forward conv with padding 2 - pad), groups 1, float32.
bool winograd_fits(const Conv2dShape& s, bool is_float32);

}  // namespace dlcore
