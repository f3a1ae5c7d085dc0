// The optimisers' update steps, one fused pass over a parameter each: SGD (momentum, dampening,
// Nesterov, weight decay) and Adam / AdamW (amsgrad), as python/dlcore/optim/{sgd,adam}.py
// and torch.optim define them.
//
// Math (per element, in T; the Python float hyper-parameters are rounded to T once, as NumPy
// does when it multiplies a float32 array by a Python float):
//   SGD   d = (maximize ? -g : g) + weight_decay * p
//         buf = first ? d : momentum * buf + (1 - dampening) * d       (with momentum)
//         d = nesterov ? d + momentum * buf : buf                         (with momentum)
//         p = p - lr * d
//   Adam  g = maximize ? -g : g;  Adam: g = g + weight_decay * p;  AdamW: p = p * (1 - lr wd)
//         m = m + (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2
//         amsgrad: vmax = max(vmax, v), and vmax stands for v below
//         p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// Compiled with -ffp-contract=off (cmake/isa.cmake): each operation above rounds once, in
// the order written, exactly as csrc/cuda/optim.cu does, so CPU and GPU steps give the same
// bits (tests/kernels/test_optim_kernels.py checks the CPU side against a float32 NumPy
// mirror of that order; tests/test_optim.py bounds the difference against torch.optim).
//
// Why a kernel: the NumPy update makes ~10 passes over each parameter with a temporary per
// operation, on one thread. The char-LSTM step's Adam over 1.22 M parameters took 3.1-3.5 ms
// that way (1-2 threads); this is one read of p, g, m, v and one write of p, m, v.
// Layout: every array flat (n), contiguous, distinct (checked in csrc/bindings/ops_optim.cpp).
// Threads: OpenMP over elements above kParallelMin (each element's update is independent, so
// any split gives the same bits). Bound: memory, (4 reads + 3 writes) * n * sizeof(T) for Adam.
// Tested: tests/kernels/test_optim_kernels.py (float64 NumPy reference, every ISA, every
// option, 1 vs 2 threads bitwise), tests/test_optim.py (against torch.optim).
#include <cmath>
#include <cstdint>

#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// Elements below which the update stays on the calling thread (fork/join ~ a few us).
constexpr int64_t kParallelMin = 1 << 15;

}  // namespace

// The SGD loop for one combination of the options (see adam_loop).
template <bool L2, bool Momentum, class T>
void sgd_loop(int64_t n, const SgdHyper& h, T* __restrict p, const T* __restrict grad, T* __restrict buf) {
  const T lr = static_cast<T>(h.lr), wd = static_cast<T>(h.weight_decay);
  const T momentum = static_cast<T>(h.momentum), keep = static_cast<T>(1 - h.dampening);
  const T sign = h.maximize ? T(-1) : T(1);
  const bool first = h.first, nesterov = h.nesterov;
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T d = L2 ? sign * grad[i] + wd * p[i] : sign * grad[i];
    if constexpr (Momentum) {
      const T b = first ? d : momentum * buf[i] + keep * d;
      buf[i] = b;
      p[i] -= lr * (nesterov ? d + momentum * b : b);
    } else {
      p[i] -= lr * d;
    }
  }
}

template <class T>
void sgd_step(int64_t n, const SgdHyper& h, T* p, const T* grad, T* buf) {
  // p, grad, buf (n); buf null without momentum. The L2 term only when weight_decay != 0.
  using Loop = void (*)(int64_t, const SgdHyper&, T*, const T*, T*);
  static constexpr Loop loops[2][2] = {{&sgd_loop<false, false, T>, &sgd_loop<false, true, T>},
                                       {&sgd_loop<true, false, T>, &sgd_loop<true, true, T>}};
  loops[h.weight_decay != 0][buf != nullptr](n, h, p, grad, buf);
}
DLCORE_INSTANTIATE(sgd_step, SgdStepSig)

// The Adam loop for one combination of the options, so that each compiles to one vector loop
// without per-element branches (with them GCC kept a scalar loop: 3.3 ms for 2^20 floats).
template <bool L2, bool Decay, bool Amsgrad, class T>
void adam_loop(int64_t n, const AdamHyper& h, T* __restrict p, const T* __restrict grad, T* __restrict m,
               T* __restrict v, T* __restrict vmax) {
  const T sign = h.maximize ? T(-1) : T(1);
  const T wd = static_cast<T>(h.weight_decay), shrink = static_cast<T>(1 - h.lr * h.weight_decay);
  const T one_minus_beta1 = static_cast<T>(1 - h.beta1), beta2 = static_cast<T>(h.beta2);
  const T one_minus_beta2 = static_cast<T>(1 - h.beta2), eps = static_cast<T>(h.eps);
  const T step_size = static_cast<T>(h.step_size), bc2 = static_cast<T>(h.bias_correction2_sqrt);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T x = Decay ? p[i] * shrink : p[i];
    const T g = L2 ? sign * grad[i] + wd * x : sign * grad[i];
    const T mi = m[i] + one_minus_beta1 * (g - m[i]);
    const T vi = beta2 * v[i] + one_minus_beta2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    T vu = vi;  // the second moment the step divides by
    if constexpr (Amsgrad) {
      vu = vmax[i] > vi || vmax[i] != vmax[i] ? vmax[i] : vi;  // np.maximum: a NaN wins
      vmax[i] = vu;
    }
    p[i] = x - step_size * (mi / (std::sqrt(vu) / bc2 + eps));
  }
}

template <class T>
void adam_step(int64_t n, const AdamHyper& h, T* p, const T* grad, T* m, T* v, T* vmax) {
  // p, grad, m, v, vmax (n); vmax null without amsgrad. Adam's L2 term and AdamW's decay only
  // when weight_decay != 0 (no 0 * inf).
  const bool l2 = !h.decoupled && h.weight_decay != 0, decay = h.decoupled && h.weight_decay != 0;
  using Loop = void (*)(int64_t, const AdamHyper&, T*, const T*, T*, T*, T*);
  static constexpr Loop loops[2][2][2] = {
      {{&adam_loop<false, false, false, T>, &adam_loop<false, false, true, T>},
       {&adam_loop<false, true, false, T>, &adam_loop<false, true, true, T>}},
      {{&adam_loop<true, false, false, T>, &adam_loop<true, false, true, T>},
       {&adam_loop<true, true, false, T>, &adam_loop<true, true, true, T>}}};
  loops[l2][decay][vmax != nullptr](n, h, p, grad, m, v, vmax);
}
DLCORE_INSTANTIATE(adam_step, AdamStepSig)

}  // namespace dlcore::cpu::DLCORE_ISA
