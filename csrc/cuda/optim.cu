// Fused multi-tensor optimizer steps: SGD (momentum, dampening, Nesterov, weight decay,
// maximize) and Adam / AdamW (amsgrad, maximize), every parameter of a list in ONE launch.
//
// Math, per element, exactly python/dlcore/optim/{sgd,adam}.py (torch.optim):
//   SGD:  d = g + wd p;  buf = d (first step) | momentum buf + (1 - dampening) d;
//         d = d + momentum buf (nesterov) | buf;  p = p - lr d
//   Adam: g = g + wd p (Adam) | p = p (1 - lr wd) (AdamW);  m = m + (1 - b1)(g - m);
//         v = b2 v + (1 - b2) g^2;  v_max = max(v_max, v) (amsgrad, used instead of v);
//         p = p - step_size m / (sqrt(v) / bias_correction2_sqrt + eps)
// Every scalar is cast to the parameter dtype and every product is rounded on its own
// (mul_rn: nvcc never fuses it into an FMA), so each operation rounds like NumPy's on the CPU.
//
// Layout: a host-built table in one device block: the per-tensor records (SgdTensor /
// AdamTensor of optim.h: pointers, sizes, per-tensor scalars), then a chunk table of int64
// pairs (tensor, start), one per kChunk elements of each tensor. Block b takes chunks b,
// b + gridDim.x, ...; its threads stride over the chunk. Parameters and state are updated IN
// PLACE; each element is read and written by one thread only (no races, no atomics).
// Preconditions (python/dlcore/cuda/kernels/optim.py): one dtype and device per call, every
// array contiguous with the parameter's size.
// Tested: pytest tests/cuda/test_optim.py (several steps against the CPU optimizers).
// Bound: memory; SGD moves 4-5 and Adam 7-9 sizeof(T) per element.
#include <cstring>

#include "cuda/common.cuh"
#include "cuda/optim.h"

namespace dlcore::cuda {

namespace {

constexpr int kThreads = 256;            // 8 warps per block
constexpr int64_t kChunk = 16 * kThreads;  // elements per chunk: 16 per thread amortises the table read

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

template <class T>
struct SgdScalars {
  T lr, momentum, one_minus_dampening, weight_decay;
  bool has_momentum, has_weight_decay, nesterov, maximize;
};

template <class T>
struct AdamScalars {
  T one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay;
  bool has_weight_decay, amsgrad, maximize, decoupled;
};

template <class T>
__global__ void sgd_kernel(const SgdTensor* __restrict__ tensors, const int64_t* __restrict__ chunks,
                           int64_t num_chunks, SgdScalars<T> s) {
  // tensors (count); chunks (num_chunks, 2) = (tensor, start)
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const SgdTensor t = tensors[chunks[2 * c]];
    const int64_t start = chunks[2 * c + 1];
    const int64_t end = min(start + kChunk, t.n);
    T* param = static_cast<T*>(t.param);               // (n)
    const T* grad = static_cast<const T*>(t.grad);      // (n)
    T* buf = static_cast<T*>(t.momentum_buffer);        // (n) | null
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) {
      const T x = param[i];
      T d = s.maximize ? -grad[i] : grad[i];
      if (s.has_weight_decay) d = d + mul_rn(s.weight_decay, x);
      if (s.has_momentum) {
        const T b = t.init_buffer ? d : mul_rn(buf[i], s.momentum) + mul_rn(s.one_minus_dampening, d);
        buf[i] = b;
        d = s.nesterov ? d + mul_rn(s.momentum, b) : b;
      }
      param[i] = x - mul_rn(s.lr, d);
    }
  }
}

template <class T>
__global__ void adam_kernel(const AdamTensor* __restrict__ tensors, const int64_t* __restrict__ chunks,
                            int64_t num_chunks, AdamScalars<T> s) {
  // tensors (count); chunks (num_chunks, 2) = (tensor, start)
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const AdamTensor t = tensors[chunks[2 * c]];
    const int64_t start = chunks[2 * c + 1];
    const int64_t end = min(start + kChunk, t.n);
    T* param = static_cast<T*>(t.param);             // (n)
    const T* grad = static_cast<const T*>(t.grad);    // (n)
    T* exp_avg = static_cast<T*>(t.exp_avg);          // (n)
    T* exp_avg_sq = static_cast<T*>(t.exp_avg_sq);    // (n)
    T* max_sq = static_cast<T*>(t.max_exp_avg_sq);    // (n) | null
    const T step_size = static_cast<T>(t.step_size);
    const T bias2_sqrt = static_cast<T>(t.bias_correction2_sqrt);
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) {
      T x = param[i];
      T g = s.maximize ? -grad[i] : grad[i];
      if (s.has_weight_decay) {
        if (s.decoupled) x = mul_rn(x, s.decay);
        else g = g + mul_rn(s.weight_decay, x);
      }
      const T m = exp_avg[i] + mul_rn(s.one_minus_beta1, g - exp_avg[i]);
      const T v = mul_rn(exp_avg_sq[i], s.beta2) + mul_rn(s.one_minus_beta2, mul_rn(g, g));
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      T v_used = v;
      if (s.amsgrad) {
        const T old = max_sq[i];
        v_used = (isnan(old) || old > v) ? old : v;  // np.maximum: NaN wins
        max_sq[i] = v_used;
      }
      const T denom = sqrt(v_used) / bias2_sqrt + s.eps;
      param[i] = x - mul_rn(step_size, m / denom);
    }
  }
}

// The records and the chunk table in one device block, released when this goes out of scope
// (stream-ordered: the kernel queued before the release still reads it safely).
template <class Record>
class DeviceTable {
 public:
  DeviceTable(const std::vector<Record>& records, int device) : device_(device) {
    std::vector<int64_t> chunks;  // (num_chunks, 2)
    for (size_t t = 0; t < records.size(); ++t)
      for (int64_t start = 0; start < records[t].n; start += kChunk) {
        chunks.push_back(static_cast<int64_t>(t));
        chunks.push_back(start);
      }
    num_chunks_ = static_cast<int64_t>(chunks.size() / 2);
    if (num_chunks_ == 0) return;
    const size_t record_bytes = (records.size() * sizeof(Record) + 15) / 16 * 16;
    const size_t bytes = record_bytes + chunks.size() * sizeof(int64_t);
    std::vector<unsigned char> host(bytes);
    std::memcpy(host.data(), records.data(), records.size() * sizeof(Record));
    std::memcpy(host.data() + record_bytes, chunks.data(), chunks.size() * sizeof(int64_t));
    block_ = allocate(bytes, device);
    records_ = static_cast<const Record*>(block_);
    chunks_ = reinterpret_cast<const int64_t*>(static_cast<unsigned char*>(block_) + record_bytes);
    copy_host_to_device(block_, host.data(), bytes, device);
  }
  ~DeviceTable() {
    if (block_) release(block_, device_);
  }
  DeviceTable(const DeviceTable&) = delete;
  DeviceTable& operator=(const DeviceTable&) = delete;

  const Record* records() const { return records_; }
  const int64_t* chunks() const { return chunks_; }
  int64_t num_chunks() const { return num_chunks_; }

 private:
  int device_;
  void* block_ = nullptr;
  const Record* records_ = nullptr;
  const int64_t* chunks_ = nullptr;
  int64_t num_chunks_ = 0;
};

// Calls fn(T{}) for float32 / float64, else std::invalid_argument naming the op.
template <class Fn>
void dispatch_float(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    default:
      throw std::invalid_argument(std::string(op) + ": parameters must be float32 or float64, got " +
                                  dtype_name(dtype));
  }
}

}  // namespace

void sgd_step(DType dtype, int device, const std::vector<SgdTensor>& tensors, const SgdOptions& o) {
  dispatch_float(dtype, "sgd_step", [&](auto tag) {
    using T = decltype(tag);
    DeviceTable<SgdTensor> table(tensors, device);
    if (table.num_chunks() == 0) return;
    const SgdScalars<T> s{static_cast<T>(o.lr), static_cast<T>(o.momentum),
                          static_cast<T>(o.one_minus_dampening), static_cast<T>(o.weight_decay),
                          o.momentum != 0.0, o.weight_decay != 0.0, o.nesterov, o.maximize};
    sgd_kernel<T><<<grid_for(table.num_chunks(), 1), kThreads, 0, current_stream()>>>(
        table.records(), table.chunks(), table.num_chunks(), s);
    check_launch("sgd_kernel");
  });
}

void adam_step(DType dtype, int device, const std::vector<AdamTensor>& tensors, const AdamOptions& o) {
  dispatch_float(dtype, "adam_step", [&](auto tag) {
    using T = decltype(tag);
    DeviceTable<AdamTensor> table(tensors, device);
    if (table.num_chunks() == 0) return;
    const AdamScalars<T> s{static_cast<T>(o.one_minus_beta1), static_cast<T>(o.beta2),
                           static_cast<T>(o.one_minus_beta2), static_cast<T>(o.eps),
                           static_cast<T>(o.weight_decay), static_cast<T>(o.decay),
                           o.weight_decay != 0.0, o.amsgrad, o.maximize, o.decoupled};
    adam_kernel<T><<<grid_for(table.num_chunks(), 1), kThreads, 0, current_stream()>>>(
        table.records(), table.chunks(), table.num_chunks(), s);
    check_launch("adam_kernel");
  });
}

}  // namespace dlcore::cuda
