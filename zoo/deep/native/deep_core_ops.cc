// Native CPU kernels of the deep residual core `h <- h + alpha * act(h W_i + b_i)`, as TensorFlow
// custom ops. zoo/deep/native/__init__.py compiles this file on first use (g++ -O3 -march=native)
// and zoo/deep/kernels.py wraps the ops with the same signatures as the XLA chunk kernels.
//
//   ZooDeepChunkForward(h, weights, biases, alpha)                 -> h_out
//   ZooDeepChunkBackward(h_start, g_end, weights, biases, alpha)   -> g_start, d_weights, d_biases
//   ZooDeepChunkBackwardSgd(h_start, g_end, weights, biases, alpha, lr)
//                                                                  -> g_start, new_weights, new_biases
//
// and plain C functions for callers that own the weights' memory (NumPy arrays, through
// ctypes), which pass the forward's sub-chunk boundaries to the backward and update the weights
// in place instead of returning a new copy of the chunk (see their comments below):
//
//   zoo_deep_forward(...)                 the chunk's output and its sub-chunk boundaries
//   zoo_deep_backward_sgd_in_place(...)   the SGD backward, reading those boundaries
//   zoo_deep_sub_chunk_layers(...)        layers per boundary
//   zoo_deep_simd()                       the instruction set this build targets
//
// The walks themselves are in deep_core_kernels.h.

#include <string>

#include "deep_core_kernels.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace zoo_deep {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;

// --- the ops ----------------------------------------------------------------------------------

static absl::Status same_as_input(tensorflow::shape_inference::InferenceContext* c, int output, int input) {
  c->set_output(output, c->input(input));
  return absl::OkStatus();
}

REGISTER_OP("ZooDeepChunkForward")
    .Input("h: T")
    .Input("weights: T")
    .Input("biases: T")
    .Input("alpha: T")
    .Output("h_out: T")
    .Attr("T: {float, double}")
    .Attr("activation: {'softsign', 'tanh', 'relu'}")
    .Attr("threads: int = 1")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) { return same_as_input(c, 0, 0); });

REGISTER_OP("ZooDeepChunkBackward")
    .Input("h_start: T")
    .Input("g_end: T")
    .Input("weights: T")
    .Input("biases: T")
    .Input("alpha: T")
    .Output("g_start: T")
    .Output("d_weights: T")
    .Output("d_biases: T")
    .Attr("T: {float, double}")
    .Attr("activation: {'softsign', 'tanh', 'relu'}")
    .Attr("threads: int = 1")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      return same_as_input(c, 2, 3);
    });

REGISTER_OP("ZooDeepChunkBackwardSgd")
    .Input("h_start: T")
    .Input("g_end: T")
    .Input("weights: T")
    .Input("biases: T")
    .Input("alpha: T")
    .Input("lr: T")
    .Output("g_start: T")
    .Output("new_weights: T")
    .Output("new_biases: T")
    .Attr("T: {float, double}")
    .Attr("activation: {'softsign', 'tanh', 'relu'}")
    .Attr("threads: int = 1")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      return same_as_input(c, 2, 3);
    });

// Checks h (B, w), weights (n, w, w), biases (n, w) and the scalar inputs.
static absl::Status check_shapes(OpKernelContext* c, const Tensor& h, const Tensor& weights, const Tensor& biases,
                                 std::initializer_list<int> scalars) {
  const int w = h.dims() == 2 ? int(h.dim_size(1)) : -1;
  if (h.dims() != 2 || w < 1) {
    return absl::InvalidArgumentError("`h` must have shape (batch, width >= 1), got " + h.shape().DebugString());
  }
  if (weights.dims() != 3 || weights.dim_size(1) != w || weights.dim_size(2) != w) {
    return absl::InvalidArgumentError("`weights` must have shape (layers, " + std::to_string(w) + ", " +
                                      std::to_string(w) + "), got " + weights.shape().DebugString());
  }
  if (biases.dims() != 2 || biases.dim_size(0) != weights.dim_size(0) || biases.dim_size(1) != w) {
    return absl::InvalidArgumentError("`biases` must have shape (" + std::to_string(weights.dim_size(0)) + ", " +
                                      std::to_string(w) + "), got " + biases.shape().DebugString());
  }
  for (int index : scalars) {
    if (!tensorflow::TensorShapeUtils::IsScalar(c->input(index).shape())) {
      return absl::InvalidArgumentError("input " + std::to_string(index) + " (alpha or lr) must be a scalar, got " +
                                        c->input(index).shape().DebugString());
    }
  }
  return absl::OkStatus();
}

class ChunkOp : public OpKernel {
 public:
  explicit ChunkOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("activation", &activation_));
    OP_REQUIRES_OK(c, c->GetAttr("threads", &threads_));
    OP_REQUIRES(c, threads_ >= 1, absl::InvalidArgumentError("`threads` must be >= 1"));
  }

 protected:
  std::string activation_;
  int threads_;
};

template <typename T>
class ForwardOp : public ChunkOp {
 public:
  using ChunkOp::ChunkOp;
  void Compute(OpKernelContext* c) override {
    const Tensor &h = c->input(0), &weights = c->input(1), &biases = c->input(2);
    OP_REQUIRES_OK(c, check_shapes(c, h, weights, biases, {3}));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(c, c->allocate_output(0, h.shape(), &out));
    const int batch = int(h.dim_size(0)), width = int(h.dim_size(1));
    const int64_t layers = weights.dim_size(0);
    if (batch == 0) return;
    const T alpha = c->input(3).scalar<T>()();
    with_activation<T>(activation_, width, batch, threads_, true, [&](auto* group) {
      using G = std::remove_pointer_t<decltype(group)>;
      chunk_forward<T, G>(threads_, batch, width, layers, alpha, h.flat<T>().data(), weights.flat<T>().data(),
                          biases.flat<T>().data(), out->flat<T>().data(), nullptr);
    });
  }
};

template <typename T, bool Sgd>
class BackwardOp : public ChunkOp {
 public:
  using ChunkOp::ChunkOp;
  void Compute(OpKernelContext* c) override {
    const Tensor &h = c->input(0), &g = c->input(1), &weights = c->input(2), &biases = c->input(3);
    OP_REQUIRES_OK(c, check_shapes(c, h, weights, biases, Sgd ? std::initializer_list<int>{4, 5}
                                                               : std::initializer_list<int>{4}));
    OP_REQUIRES(c, g.shape() == h.shape(),
                absl::InvalidArgumentError("`g_end` must have the shape of `h_start` " + h.shape().DebugString() +
                                           ", got " + g.shape().DebugString()));
    Tensor *g_start = nullptr, *out_w = nullptr, *out_b = nullptr;
    OP_REQUIRES_OK(c, c->allocate_output(0, g.shape(), &g_start));
    OP_REQUIRES_OK(c, c->allocate_output(1, weights.shape(), &out_w));
    OP_REQUIRES_OK(c, c->allocate_output(2, biases.shape(), &out_b));
    const int batch = int(h.dim_size(0)), width = int(h.dim_size(1));
    const int64_t layers = weights.dim_size(0);
    const T alpha = c->input(4).scalar<T>()();
    const T lr = Sgd ? c->input(5).scalar<T>()() : T(0);
    if (layers == 0 || batch == 0) {
      // Nothing to walk: the gradient passes through; no sample gives a zero gradient.
      std::copy_n(g.flat<T>().data(), g.NumElements(), g_start->flat<T>().data());
      if (Sgd) {
        std::copy_n(weights.flat<T>().data(), weights.NumElements(), out_w->flat<T>().data());
        std::copy_n(biases.flat<T>().data(), biases.NumElements(), out_b->flat<T>().data());
      } else {
        std::fill_n(out_w->flat<T>().data(), out_w->NumElements(), T(0));
        std::fill_n(out_b->flat<T>().data(), out_b->NumElements(), T(0));
      }
      return;
    }
    with_activation<T>(activation_, width, batch, threads_, false, [&](auto* group) {
      using G = std::remove_pointer_t<decltype(group)>;
      chunk_backward<T, G>(threads_, batch, width, layers, alpha, h.flat<T>().data(), g.flat<T>().data(), weights.flat<T>().data(),
                           biases.flat<T>().data(), Sgd ? &lr : nullptr, g_start->flat<T>().data(),
                           out_w->flat<T>().data(), out_b->flat<T>().data());
    });
  }
};

#define ZOO_DEEP_REGISTER(T)                                                                          \
  REGISTER_KERNEL_BUILDER(                                                                            \
      Name("ZooDeepChunkForward").Device(tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), ForwardOp<T>); \
  REGISTER_KERNEL_BUILDER(Name("ZooDeepChunkBackward").Device(tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
                          BackwardOp<T, false>);                                                      \
  REGISTER_KERNEL_BUILDER(                                                                            \
      Name("ZooDeepChunkBackwardSgd").Device(tensorflow::DEVICE_CPU).TypeConstraint<T>("T"),          \
      BackwardOp<T, true>);

ZOO_DEEP_REGISTER(float)
ZOO_DEEP_REGISTER(double)

}  // namespace zoo_deep

static bool known_activation(const std::string& name) {
  return name == "softsign" || name == "tanh" || name == "relu";
}

// Runs `f(T{})` for dtype 1 (float32) or 2 (float64).
template <class F>
static void with_dtype(int dtype, F&& f) {
  if (dtype == 1) {
    f(float(0));
  } else {
    f(double(0));
  }
}

// Layers per sub-chunk boundary of the kernels for this dtype, width and batch: `bounds` below
// hold ceil(layers / that) blocks of (batch, width).
extern "C" int64_t zoo_deep_sub_chunk_layers(int dtype, int width, int batch) {
  if (dtype == 1) return zoo_deep::sub_chunk_layers<float>(width, batch);
  return zoo_deep::sub_chunk_layers<double>(width, batch);
}

// The instruction set the kernels were built for: "avx512", "avx2", "sse2", ...
extern "C" const char* zoo_deep_simd() { return zoo_deep::simd_name(); }

// The chunk forward on caller-owned arrays: writes the output h_out (batch x width) and, when
// `bounds` is not null, the input of every sub-chunk (ceil(layers / zoo_deep_sub_chunk_layers)
// blocks of batch x width) for zoo_deep_backward_sgd_in_place. The same bits as
// ZooDeepChunkForward. Returns 0, or -1 for an argument it does not take.
extern "C" int zoo_deep_forward(int dtype, const char* activation, int threads, int batch, int width, int64_t layers,
                                double alpha, const void* h, const void* weights, const void* biases, void* h_out,
                                void* bounds) {
  const std::string name(activation ? activation : "");
  if ((dtype != 1 && dtype != 2) || !known_activation(name) || threads < 1 || batch < 0 || width < 1 || layers < 0) {
    return -1;
  }
  with_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    if (batch == 0) return;
    zoo_deep::with_activation<T>(name, width, batch, threads, bounds == nullptr, [&](auto* group) {
      using G = std::remove_pointer_t<decltype(group)>;
      zoo_deep::chunk_forward<T, G>(threads, batch, width, layers, T(alpha), static_cast<const T*>(h),
                                    static_cast<const T*>(weights), static_cast<const T*>(biases),
                                    static_cast<T*>(h_out), static_cast<T*>(bounds));
    });
  });
  return 0;
}

// The chunk backward-with-SGD on caller-owned arrays: reads h_start and g_end (batch x width),
// updates weights (layers x width x width) and biases (layers x width) in place to
// `W - lr dW`, `b - lr db`, and writes g_start (batch x width). `bounds` is zoo_deep_forward's
// (it spares the kernels a walk over the chunk), or null. `dtype` is 1 for float32, 2 for
// float64. Returns 0, or -1 for an argument it does not take (the Python wrapper checks them
// first). The same walk, threads and bits as ZooDeepChunkBackwardSgd.
extern "C" int zoo_deep_backward_sgd_in_place(int dtype, const char* activation, int threads, int batch, int width,
                                              int64_t layers, double alpha, double lr, const void* h_start,
                                              const void* g_end, void* weights, void* biases, void* g_start,
                                              const void* bounds) {
  const std::string name(activation ? activation : "");
  if ((dtype != 1 && dtype != 2) || !known_activation(name) || threads < 1 || batch < 0 || width < 1 || layers < 0) {
    return -1;
  }
  with_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* h = static_cast<const T*>(h_start);
    const T* g = static_cast<const T*>(g_end);
    T* w = static_cast<T*>(weights);
    T* b = static_cast<T*>(biases);
    T* out = static_cast<T*>(g_start);
    if (layers == 0 || batch == 0) {
      std::copy_n(g, int64_t(batch) * width, out);
      return;
    }
    const T rate = T(lr);
    zoo_deep::with_activation<T>(name, width, batch, threads, false, [&](auto* group) {
      using G = std::remove_pointer_t<decltype(group)>;
      zoo_deep::chunk_backward<T, G>(threads, batch, width, layers, T(alpha), h, g, w, b, &rate, out, w, b,
                                     static_cast<const T*>(bounds));
    });
  });
  return 0;
}

// A 64-bit checksum of two byte ranges (zoo.deep.checksums; the second may be empty): each range
// is padded with zeros to whole rows of eight little-endian 32-bit words; per column c of the
// rows, a_c += word and b_c += a_c row by row (Fletcher's sums, mod 2^64) across both ranges;
// the sixteen sums are then mixed into one value. Any change of one word changes a_c.
extern "C" uint64_t zoo_deep_checksum(const void* first, int64_t first_bytes, const void* second,
                                      int64_t second_bytes) {
  // Columns 0-3 and 4-7 as two vectors of four 64-bit sums, kept in registers.
  typedef uint64_t Sums __attribute__((vector_size(32)));
  typedef uint32_t Words __attribute__((vector_size(16)));
  Sums a_low = {0, 0, 0, 0}, a_high = {0, 0, 0, 0}, b_low = {0, 0, 0, 0}, b_high = {0, 0, 0, 0};
  auto row = [&](const unsigned char* bytes) __attribute__((always_inline)) {
    Words low, high;
    std::memcpy(&low, bytes, 16);
    std::memcpy(&high, bytes + 16, 16);
    a_low += __builtin_convertvector(low, Sums);
    a_high += __builtin_convertvector(high, Sums);
    b_low += a_low;
    b_high += a_high;
  };
  auto add = [&](const unsigned char* bytes, int64_t size) {
    const int64_t rows = size / 32;
    for (int64_t r = 0; r < rows; ++r) row(bytes + r * 32);
    if (size % 32) {
      unsigned char last[32] = {0};
      std::memcpy(last, bytes + rows * 32, size_t(size % 32));
      row(last);
    }
  };
  if (first_bytes > 0) add(static_cast<const unsigned char*>(first), first_bytes);
  if (second_bytes > 0) add(static_cast<const unsigned char*>(second), second_bytes);
  uint64_t a[8], b[8];
  for (int c = 0; c < 4; ++c) {
    a[c] = a_low[c];
    a[c + 4] = a_high[c];
    b[c] = b_low[c];
    b[c + 4] = b_high[c];
  }
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  uint64_t h = 0;
  for (int c = 0; c < 8; ++c) {
    h = mix(h ^ a[c]);
    h = mix(h ^ b[c]);
  }
  return h;
}
