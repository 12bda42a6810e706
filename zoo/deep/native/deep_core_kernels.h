// The deep core's chunk kernels in plain C++ (no TensorFlow): deep_core_ops.cc wraps them as
// TensorFlow ops and C functions, and a standalone program can time them.
//
// Shapes: h (B, w), weights (n, w, w) with row j the input coordinate, biases (n, w).
//
// Layout. For widths 1, 2, 4 and 8 (and a batch of at least one SIMD vector) a lane group keeps
// each coordinate as `NV` SIMD vectors whose lanes are samples: width 4, batch 16, float32 is
// four planes of two 8-lane vectors on AVX2, of one 16-lane vector on AVX-512. Other widths,
// and smaller batches, go sample by sample, vectorized over the width.
//
// The walks are bound by latency: one layer's forward is a short chain (a dot product, then the
// activation's division) that the next layer waits for, and a core can run several such chains
// at once. So the kernels keep independent chains in one instruction stream:
//
// - Backward. The chunk's forward walk keeps sub-chunk boundaries (every S layers, S chosen so
//   a sub-chunk's layer inputs and activation derivatives fit in L2); the step's forward pass
//   can hand them over (`bounds`), else a first walk finds them. Then per sub-chunk, last
//   first, one loop walks sub-chunk k back (dz_i = alpha g act'(z_i), dW_i = h_i^T dz_i,
//   db_i = sum(dz_i), g <- g + dz_i W_i^T with the pre-update W_i, and W_i - lr dW_i written)
//   while it recomputes sub-chunk k-1's layer inputs h_i and act'(z_i) from its boundary: the
//   two chains do not depend on each other. Every layer's gradient is taken with its
//   pre-update weights, so this is exactly one plain SGD step.
// - Forward of many samples (evaluation): a thread's lane groups are walked together, layer by
//   layer, so the core is bound by arithmetic, not by one group's chain.
//
// Threads split the batch into lane groups, one or more per thread (on AVX-512 a batch of one
// vector is split into two half-width vectors). Each thread recomputes and walks back its own
// samples' chains; the threads meet once per sub-chunk, and each sums the weight gradients of
// half of the sub-chunk walked before over all samples, and writes those layers' results: three
// stages of three sub-chunks in one loop. Products are rounded before they are added, vector
// by vector in sample order, then lane halves: the order one group holding every lane uses, so
// one and two threads give the same bits.

#ifndef ZOO_DEEP_CORE_KERNELS_H_
#define ZOO_DEEP_CORE_KERNELS_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// Inlined into the walks' loops, whose chains must stay in registers across the calls.
#define ZOO_INLINE inline __attribute__((always_inline))

namespace zoo_deep {

// The widest vector the kernels use: the build's SIMD path (`-march=native`, or a narrower one
// forced by zoo.deep.native's ZOO_DEEP_SIMD), or ZOO_DEEP_VECTOR_BYTES when defined (a test
// build can run 16-lane groups on an AVX2 machine that way).
#if defined(ZOO_DEEP_VECTOR_BYTES)
constexpr int kVectorBytes = ZOO_DEEP_VECTOR_BYTES;
#elif defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

// The instruction set the build targets, for reports.
static inline const char* simd_name() {
#if defined(__AVX512F__)
  return kVectorBytes == 64 ? "avx512" : "avx512 (narrow vectors)";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#elif defined(__AVX__)
  return "avx";
#elif defined(__SSE2__)
  return "sse2";
#else
  return "generic";
#endif
}

// One SIMD register of T (GCC/Clang vector extensions: the compiler picks the instructions).
template <typename T, int Bytes = kVectorBytes>
struct Simd {
  typedef T type __attribute__((vector_size(Bytes)));
  static constexpr int lanes = Bytes / sizeof(T);
};

// Bytes of the whole batch's recomputed layer inputs and derivatives per sub-chunk: two or
// three sub-chunks (one thread, two threads) stay well inside a 512 KiB L2.
constexpr int64_t kSubChunkBytes = 128 * 1024;
// How far ahead (in layers) a walk asks for the weights it will read.
constexpr int64_t kPrefetchLayers = 24;
// Below this many multiply-adds per call a second thread costs more than it saves.
constexpr int64_t kMinWorkPerThread = 1 << 16;
// Alignment of every buffer (the widest vector).
constexpr std::size_t kAlignment = 64;

// Layers per sub-chunk for a batch and width: the same for the forward that keeps boundaries
// and the backward that reads them.
template <typename T>
static inline int64_t sub_chunk_layers(int width, int batch) {
  const int64_t bytes = 2 * int64_t(width) * std::max(batch, 1) * int64_t(sizeof(T));
  return std::max<int64_t>(8, kSubChunkBytes / bytes);
}

// --- activations ------------------------------------------------------------------------------
//
// `step(h, z, alpha, d)` is one layer's update `h + alpha act(z)` and, when `d` is given, writes
// act'(z) there for the reverse walk. Written so the chain from z to the new h is short: every
// walk is bound by that chain's latency.

// |x| of a vector by clearing the sign bits (one instruction, where a compare-and-select is three).
template <typename X>
static ZOO_INLINE X absolute(X x) {
  using Bits = std::conditional_t<sizeof(x[0]) == 8, int64_t, int32_t>;
  typedef Bits Mask __attribute__((vector_size(sizeof(X))));
  const Mask sign = Mask{} + Bits(uint64_t(1) << (8 * sizeof(Bits) - 1));
  return (X)((Mask)x & ~sign);
}

struct Softsign {
  // softsign(z) = z / (1 + |z|), softsign'(z) = 1 / (1 + |z|)^2: one division for both.
  template <typename X, typename T>
  static ZOO_INLINE X step(X h, X z, T alpha, X* derivative) {
    X s = 1 / (1 + absolute(z));
    if (derivative) *derivative = s * s;
    return h + (alpha * z) * s;
  }
  template <typename T>
  static inline T scalar(T h, T z, T alpha, T* derivative) {
    T s = 1 / (1 + std::fabs(z));
    if (derivative) *derivative = s * s;
    return h + (alpha * z) * s;
  }
};

struct Tanh {
  template <typename X, typename T>
  static ZOO_INLINE X step(X h, X z, T alpha, X* derivative) {
    X t;
    for (int l = 0; l < int(sizeof(X) / sizeof(T)); ++l) t[l] = std::tanh(z[l]);
    if (derivative) *derivative = 1 - t * t;
    return h + alpha * t;
  }
  template <typename T>
  static inline T scalar(T h, T z, T alpha, T* derivative) {
    T t = std::tanh(z);
    if (derivative) *derivative = 1 - t * t;
    return h + alpha * t;
  }
};

struct Relu {
  template <typename X, typename T>
  static ZOO_INLINE X step(X h, X z, T alpha, X* derivative) {
    X zero = z - z;
    if (derivative) *derivative = z > zero ? zero + 1 : zero;
    return h + alpha * (z > zero ? z : zero);
  }
  template <typename T>
  static inline T scalar(T h, T z, T alpha, T* derivative) {
    if (derivative) *derivative = z > 0 ? T(1) : T(0);
    return h + alpha * (z > 0 ? z : T(0));
  }
};

// `x`, as a value the compiler must compute before using it: `opaque(a * b) + c` can never
// become fma(a, b, c). Sums of products written with it round the same way wherever they are
// computed (one group's walk, or several groups' added later).
template <typename X>
static ZOO_INLINE X opaque(X x) {
#if defined(__AVX512F__)
  constexpr std::size_t register_bytes = 64;
#elif defined(__AVX__)
  constexpr std::size_t register_bytes = 32;
#else
  constexpr std::size_t register_bytes = 16;
#endif
  if constexpr (sizeof(X) > register_bytes) {
    asm("" : "+m"(x));  // wider than a register (a test build's emulated vector width)
  } else {
#if defined(__x86_64__) || defined(__i386__)
    asm("" : "+x"(x));
#elif defined(__aarch64__)
    asm("" : "+w"(x));
#else
    asm("" : "+m"(x));
#endif
  }
  return x;
}

// A vector of `x` in every lane (`x - 0` is `x` for every x, so the compiler folds it to a
// broadcast where `0 + x` would keep an add for x = -0).
template <typename V, typename T>
static ZOO_INLINE V splat(T x) {
  return x - V{};
}

// sum_j x[j] * w[j * W] (+ start): two interleaved chains, so the latency is about half a serial
// sum's.
template <int W, int Stride, typename V, typename T>
static ZOO_INLINE V dot(const V* x, int x_stride, const T* w, V start) {
  V even = start + x[0] * w[0];
  if constexpr (W == 1) {
    return even;
  } else {
    V odd = x[x_stride] * w[Stride];
    for (int j = 2; j < W; j += 2) {
      even += x[j * x_stride] * w[j * Stride];
      if (j + 1 < W) odd += x[(j + 1) * x_stride] * w[(j + 1) * Stride];
    }
    return even + odd;
  }
}

// --- horizontal sums of many vectors at once --------------------------------------------------

// Folds x and y, each holding vector_lanes / P inputs of P lanes, into one vector holding
// twice as many inputs of P / 2 lanes, by adding each input's two halves (lane l and lane
// l + P / 2). In each block of P lanes the first half keeps x's input and the second y's: one
// operand is a blend (any FP port), only the other a shuffle.
template <int P, typename V, std::size_t... O>
static ZOO_INLINE V fold(V x, V y, std::index_sequence<O...>) {
  constexpr int half = P / 2;
  constexpr int lanes = sizeof...(O);
  V low = __builtin_shufflevector(x, y, int(O % P < half ? O : O + lanes)...);
  V high = __builtin_shufflevector(x, y, int(O % P < half ? O + half : O - half + lanes)...);
  return low + high;
}

template <int P, int Count, int Lanes, typename V>
static ZOO_INLINE void fold_levels(V* a) {
  if constexpr (P >= 2) {
    for (int m = 0; m < Count / 2; ++m) a[m] = fold<P>(a[2 * m], a[2 * m + 1], std::make_index_sequence<Lanes>());
    fold_levels<P / 2, Count / 2, Lanes>(a);
  }
}

// Where `sum_lanes` needs input m to be so that its sum ends in lane m of the result: slot[m].
template <int Count, int Lanes>
struct FoldSlots {
  int slot[Count];
  constexpr FoldSlots() : slot() {
    int who[Count * Lanes] = {};  // the input whose partial sum sits in each lane
    for (int v = 0; v < Count; ++v)
      for (int o = 0; o < Lanes; ++o) who[v * Lanes + o] = v;
    int vectors = Count;
    for (int P = Lanes; P >= 2; P /= 2) {
      for (int m = 0; m < vectors / 2; ++m)
        for (int o = 0; o < Lanes; ++o)
          who[m * Lanes + o] = o % P < P / 2 ? who[2 * m * Lanes + o] : who[(2 * m + 1) * Lanes + o];
      vectors /= 2;
    }
    for (int m = 0; m < Count; ++m) slot[m] = who[m];
  }
};

// a[slot[m]] (slot from FoldSlots) are the vectors of inputs m = 0..Count); afterwards lane l
// of a[v] holds the lane sum of input v * Lanes + l.
template <int Count, int Lanes, typename V>
static ZOO_INLINE void sum_lanes(V* a) {
  static_assert(Count % Lanes == 0, "pad the inputs to whole vectors");
  fold_levels<Lanes, Count, Lanes>(a);
}

// One layer's result from its summed gradient: `old - lr * gradient`, or the gradient when `lr`
// is null. `out` may be `old`.
template <typename T>
static ZOO_INLINE void write_result(const T* gradient, const T* old, int64_t size, const T* lr, T* out) {
  if (lr) {
    const T rate = *lr;
    for (int64_t m = 0; m < size; ++m) out[m] = old[m] - rate * gradient[m];
  } else {
    std::copy_n(gradient, size, out);
  }
}

// --- a lane group of a small compile-time width: samples as SIMD lanes ------------------------

template <typename T, int W, int NV, class Act, int Bytes = kVectorBytes>
class LaneGroup {
 public:
  using V = typename Simd<T, Bytes>::type;
  static constexpr int kLanes = Simd<T, Bytes>::lanes;
  static constexpr int kCapacity = NV * kLanes;             // samples per group
  static constexpr int kPartial = ((W * W + W + kLanes - 1) / kLanes) * kLanes;  // dW, db, pad
  static constexpr int64_t kLayerVectors = 2 * W * NV;     // a kept layer: h_i, then act'(z_i)
  static constexpr bool kLaneGroup = true;
  static constexpr FoldSlots<kPartial, kLanes> kSlots{};

  static int capacity(int) { return kCapacity; }
  static int64_t buffer_per_layer(int, int) { return kLayerVectors * kLanes; }  // in T

  LaneGroup(int, int samples, T alpha) : samples_(samples), alpha_(alpha) {}

  // rows: (samples, W). Padding lanes repeat sample 0 (finite, like a real sample) and get a
  // zero gradient, so they add nothing to the weight gradients.
  void load_h(const T* rows) { load(rows, h_, true); }
  void load_g(const T* rows) { load(rows, g_, false); }
  void store_h(T* rows) const { store(h_, rows); }
  void store_g(T* rows) const { store(g_, rows); }

  // One layer forward: h <- h + alpha act(h w + b); with Keep, the layer's input and act'(z)
  // go to `keep` (kLayerVectors vectors).
  template <bool Keep>
  static ZOO_INLINE void layer_forward(V (&h)[W][NV], const T* w, const T* b, T alpha, V* keep) {
    V z[W][NV];
    for (int k = 0; k < W; ++k)
      for (int v = 0; v < NV; ++v) z[k][v] = dot<W, W>(&h[0][v], NV, w + k, splat<V>(b[k]));
    if constexpr (Keep) {
      for (int k = 0; k < W; ++k)
        for (int v = 0; v < NV; ++v) keep[k * NV + v] = h[k][v];
      for (int k = 0; k < W; ++k)
        for (int v = 0; v < NV; ++v) h[k][v] = Act::step(h[k][v], z[k][v], alpha, &keep[(W + k) * NV + v]);
    } else {
      for (int k = 0; k < W; ++k)
        for (int v = 0; v < NV; ++v) h[k][v] = Act::step(h[k][v], z[k][v], alpha, static_cast<V*>(nullptr));
    }
  }

  // One layer of the reverse walk's dependent chain: dz = alpha g act'(z), written over act'(z)
  // in `keep`, and g <- g + dz w^T (w before its update).
  static ZOO_INLINE void layer_chain(V (&g)[W][NV], const T* w, V* keep, T alpha) {
    V* d = keep + W * NV;
    V dz[W][NV];
    for (int k = 0; k < W; ++k)
      for (int v = 0; v < NV; ++v) d[k * NV + v] = dz[k][v] = (alpha * d[k * NV + v]) * g[k][v];
    for (int j = 0; j < W; ++j)
      for (int v = 0; v < NV; ++v) g[j][v] = dot<W, 1>(&dz[0][v], NV, w + j * W, g[j][v]);
  }

  // One layer of the reverse walk with its weight gradient (one group holding the whole
  // batch): `layer_chain`, then dW and db summed from dz in registers, and the layer's result
  // written (`finish`).
  static ZOO_INLINE void layer_reverse(V (&g)[W][NV], const T* w, const T* b, const V* keep, T alpha, const T* lr,
                                       T* out_w, T* out_b) {
    const V* d = keep + W * NV;
    V dz[W * NV];
    for (int k = 0; k < W; ++k)
      for (int v = 0; v < NV; ++v) dz[k * NV + v] = (alpha * d[k * NV + v]) * g[k][v];
    for (int j = 0; j < W; ++j)
      for (int v = 0; v < NV; ++v) g[j][v] = dot<W, 1>(&dz[v], NV, w + j * W, g[j][v]);
    V acc[kPartial];
    add_products(keep, dz, acc, true);
    finish(acc, w, b, lr, out_w, out_b);
  }

  // Adds one kept layer's h^T dz and sum(dz) (after `layer_chain`) to `acc` (kPartial
  // vectors, in `kSlots` order), lane by lane; `first` starts `acc` instead. Every product is
  // rounded before it is added (`opaque`: never fused into a multiply-add, which the compiler
  // might do in one instantiation and not another), and the vectors are added in sample order,
  // so the sums are the same whichever groups hold the lanes.
  static ZOO_INLINE void add_products(const V* layer, V* acc, bool first) { add_products(layer, layer + W * NV, acc, first); }
  static ZOO_INLINE void add_products(const V* h, const V* dz, V* acc, bool first) {
    for (int j = 0; j < W; ++j)
      for (int k = 0; k < W; ++k) {
        V& out = acc[kSlots.slot[j * W + k]];
        V s = opaque(h[j * NV] * dz[k * NV]);
        if (!first) s = out + s;
        for (int v = 1; v < NV; ++v) s += opaque(h[j * NV + v] * dz[k * NV + v]);
        out = s;
      }
    for (int k = 0; k < W; ++k) {
      V& out = acc[kSlots.slot[W * W + k]];
      V s = first ? dz[k * NV] : out + dz[k * NV];
      for (int v = 1; v < NV; ++v) s += dz[k * NV + v];
      out = s;
    }
    if (first)
      for (int m = W * W + W; m < kPartial; ++m) acc[kSlots.slot[m]] = V{};
  }

  // One layer's result from its `add_products` sums (lane halves added last).
  static ZOO_INLINE void finish(V* acc, const T* w, const T* b, const T* lr, T* out_w, T* out_b) {
    sum_lanes<kPartial, kLanes>(acc);
    const T* total = reinterpret_cast<const T*>(acc);
    write_result(total, w, W * W, lr, out_w);
    write_result(total + W * W, b, W, lr, out_b);
  }

  // Walks `layers` layers from this group's h; with Keep, writes each layer's input and act'(z)
  // to `buffer`.
  template <bool Keep>
  void forward(const T* weights, const T* biases, int64_t layers, V* buffer) {
    V h[W][NV];
    std::memcpy(h, h_, sizeof(h));
    const T alpha = alpha_;
    for (int64_t i = 0; i < layers; ++i) {
      __builtin_prefetch(weights + (i + kPrefetchLayers) * W * W);
      __builtin_prefetch(biases + (i + kPrefetchLayers) * W);
      layer_forward<Keep>(h, weights + i * W * W, biases + i * W, alpha, Keep ? buffer + i * kLayerVectors : nullptr);
    }
    std::memcpy(h_, h, sizeof(h));
  }

  // Walks `count` groups together, layer by layer: their chains are independent, so the core
  // overlaps them and runs at its arithmetic throughput (evaluation's large batches).
  static void forward_together(LaneGroup* groups, int count, const T* weights, const T* biases, int64_t layers) {
    if (count == 1) return groups[0].template forward<false>(weights, biases, layers, nullptr);
    const T alpha = groups[0].alpha_;
    for (int64_t i = 0; i < layers; ++i) {
      const T* w = weights + i * W * W;
      const T* b = biases + i * W;
      for (int q = 0; q < count; ++q) layer_forward<false>(groups[q].h_, w, b, alpha, nullptr);
    }
  }

  // One stage of the backward of a group holding the whole batch, in one loop so the chains
  // overlap: walks the `rcount` layers kept in `rbuf` back from this group's g (last first;
  // `layer_reverse`, writing each layer's result to out_w / out_b) and recomputes `fcount`
  // layers from this group's h into `fbuf`.
  void stage_direct(const T* rw, const T* rb, int64_t rcount, const V* rbuf, const T* lr, T* out_w, T* out_b,
                    const T* fw, const T* fb, int64_t fcount, V* fbuf) {
    V g[W][NV], h[W][NV];
    std::memcpy(g, g_, sizeof(g));
    std::memcpy(h, h_, sizeof(h));
    const T alpha = alpha_;
    const int64_t n = std::max(rcount, fcount);
    for (int64_t i = 0; i < n; ++i) {
      if (i < rcount) {
        const int64_t r = rcount - 1 - i;
        layer_reverse(g, rw + r * W * W, rb + r * W, rbuf + r * kLayerVectors, alpha, lr, out_w + r * W * W,
                      out_b + r * W);
      }
      if (i < fcount) {
        __builtin_prefetch(fw + (i + kPrefetchLayers) * W * W);
        __builtin_prefetch(fb + (i + kPrefetchLayers) * W);
        layer_forward<true>(h, fw + i * W * W, fb + i * W, alpha, fbuf + i * kLayerVectors);
      }
    }
    std::memcpy(g_, g, sizeof(g));
    std::memcpy(h_, h, sizeof(h));
  }

  // One stage of the backward, in one loop so the chains overlap: walks the `rcount` layers
  // kept in `rbuf` back from this group's g (last first; `layer_chain`), recomputes `fcount`
  // layers from this group's h into `fbuf`, and calls `extra(i)` for i < `extra_count` (the
  // weight gradients, summed and written there).
  template <class Extra>
  void stage(const T* rw, int64_t rcount, V* rbuf, const T* fw, const T* fb, int64_t fcount, V* fbuf,
             int64_t extra_count, Extra&& extra) {
    V g[W][NV], h[W][NV];
    std::memcpy(g, g_, sizeof(g));
    std::memcpy(h, h_, sizeof(h));
    const T alpha = alpha_;
    const int64_t n = std::max({rcount, fcount, extra_count});
    for (int64_t i = 0; i < n; ++i) {
      if (i < rcount) {
        const int64_t r = rcount - 1 - i;
        layer_chain(g, rw + r * W * W, rbuf + r * kLayerVectors, alpha);
      }
      if (i < extra_count) extra(i);
      if (i < fcount) {
        __builtin_prefetch(fw + (i + kPrefetchLayers) * W * W);
        __builtin_prefetch(fb + (i + kPrefetchLayers) * W);
        layer_forward<true>(h, fw + i * W * W, fb + i * W, alpha, fbuf + i * kLayerVectors);
      }
    }
    std::memcpy(g_, g, sizeof(g));
    std::memcpy(h_, h, sizeof(h));
  }

 private:
  void load(const T* rows, V (&dst)[W][NV], bool repeat) {
    for (int v = 0; v < NV; ++v)
      for (int l = 0; l < kLanes; ++l) {
        int s = v * kLanes + l;
        for (int j = 0; j < W; ++j)
          dst[j][v][l] = s < samples_ ? rows[s * W + j] : (repeat ? rows[j] : T(0));
      }
  }
  void store(const V (&src)[W][NV], T* rows) const {
    for (int s = 0; s < samples_; ++s)
      for (int j = 0; j < W; ++j) rows[s * W + j] = src[j][s / kLanes][s % kLanes];
  }

  alignas(kAlignment) V h_[W][NV];
  alignas(kAlignment) V g_[W][NV];
  int samples_;
  T alpha_;
};

// --- a group of any width: sample by sample, vectorized over the width ------------------------

template <typename T, class Act>
class SampleGroup {
 public:
  using V = T;

  static constexpr bool kLaneGroup = false;  // `reverse` adds to partial sums
  static int capacity(int samples) { return samples; }
  static int64_t partial_stride(int width) { return int64_t(width) * width + width; }
  static int64_t buffer_per_layer(int width, int samples) { return 2 * int64_t(width) * samples; }

  SampleGroup(int width, int samples, T alpha)
      : width_(width), samples_(samples), alpha_(alpha), h_(size_t(width) * samples),
        g_(size_t(width) * samples), z_(size_t(width) * samples), dz_(size_t(width) * samples) {}

  int64_t state_size() const { return int64_t(width_) * samples_; }
  void load_h(const T* rows) { std::copy(rows, rows + h_.size(), h_.begin()); }
  void load_g(const T* rows) { std::copy(rows, rows + g_.size(), g_.begin()); }
  void store_h(T* rows) const { std::copy(h_.begin(), h_.end(), rows); }
  void store_g(T* rows) const { std::copy(g_.begin(), g_.end(), rows); }
  void save(T* dst) const { std::copy(h_.begin(), h_.end(), dst); }
  void restore(const T* src) { std::copy(src, src + h_.size(), h_.begin()); }

  template <bool Keep>
  void forward(const T* weights, const T* biases, int64_t layers, T* buffer) {
    const int w = width_;
    const int64_t size = int64_t(w) * samples_;
    T* h = h_.data();
    T* z = z_.data();
    for (int64_t i = 0; i < layers; ++i) {
      const T* wi = weights + i * w * w;
      const T* bi = biases + i * w;
      for (int s = 0; s < samples_; ++s) {
        T* zs = z + s * w;
        const T* hs = h + s * w;
        for (int k = 0; k < w; ++k) zs[k] = 0;
        for (int j = 0; j < w; ++j) {
          const T hj = hs[j];
          const T* row = wi + j * w;
#pragma omp simd
          for (int k = 0; k < w; ++k) zs[k] += hj * row[k];
        }
        for (int k = 0; k < w; ++k) zs[k] += bi[k];
      }
      if constexpr (Keep) {
        T* keep = buffer + i * 2 * size;
        std::copy(h, h + size, keep);
        T* d = keep + size;
        for (int64_t m = 0; m < size; ++m) h[m] = Act::scalar(h[m], z[m], alpha_, &d[m]);
      } else {
        for (int64_t m = 0; m < size; ++m) h[m] = Act::scalar(h[m], z[m], alpha_, static_cast<T*>(nullptr));
      }
    }
  }

  // The reverse walk over `layers` layers kept in `buffer`; adds layer i's dW (row-major) and
  // db to partial[i * partial_stride ...].
  void reverse(const T* weights, int64_t layers, const T* buffer, T* partial) {
    const int w = width_;
    const int64_t size = int64_t(w) * samples_;
    const int64_t stride = partial_stride(w);
    T* g = g_.data();
    T* dz = dz_.data();
    for (int64_t i = layers - 1; i >= 0; --i) {
      const T* wi = weights + i * w * w;
      const T* h = buffer + i * 2 * size;
      const T* d = h + size;
      T* dw = partial + i * stride;
      T* db = dw + w * w;
      for (int64_t m = 0; m < size; ++m) dz[m] = (alpha_ * d[m]) * g[m];
      for (int s = 0; s < samples_; ++s) {
        const T* dzs = dz + s * w;
        const T* hs = h + s * w;
        T* gs = g + s * w;
        for (int j = 0; j < w; ++j) {
          const T* row = wi + j * w;
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int k = 0; k < w; ++k) sum += dzs[k] * row[k];
          gs[j] += sum;
        }
        for (int j = 0; j < w; ++j) {
          const T hj = hs[j];
          T* out = dw + j * w;
#pragma omp simd
          for (int k = 0; k < w; ++k) out[k] += hj * dzs[k];
        }
#pragma omp simd
        for (int k = 0; k < w; ++k) db[k] += dzs[k];
      }
    }
  }

 private:
  int width_, samples_;
  T alpha_;
  std::vector<T> h_, g_, z_, dz_;
};

// --- threads ----------------------------------------------------------------------------------

// A barrier that spins briefly, then sleeps on a condition variable: on a shared machine the
// other thread may be descheduled for a while, and a spinning or yielding waiter would take the
// core it needs.
class Barrier {
 public:
  explicit Barrier(int parties) : parties_(parties) {}
  void wait() {
    if (parties_ == 1) return;
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == parties_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
      wake_.notify_all();
      return;
    }
    for (int spins = 0; spins < 2000; ++spins) {
      if (generation_.load(std::memory_order_acquire) != generation) return;
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#endif
    }
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != generation; });
  }

 private:
  const int parties_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
};

template <typename F>
static void run_threads(int threads, F&& body) {
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back([&body, t] { body(t); });
  body(0);
  for (auto& worker : workers) worker.join();
}

// A zeroed array of T aligned for whole-vector loads and stores.
template <typename T>
class AlignedArray {
 public:
  explicit AlignedArray(int64_t size)
      : data_(new (std::align_val_t(kAlignment)) T[std::max<int64_t>(size, 1)]()) {}
  ~AlignedArray() { operator delete[](data_, std::align_val_t(kAlignment)); }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  T* get() const { return data_; }

 private:
  T* data_;
};

// The groups of a batch (`capacity` samples each, the last one partial), loaded from rows.
template <typename T, class G>
static std::vector<G> make_groups(int batch, int width, T alpha, const T* h_rows, const T* g_rows) {
  const int capacity = G::capacity(batch);
  std::vector<G> groups;
  groups.reserve(size_t((batch + capacity - 1) / capacity));
  for (int s = 0; s < batch; s += capacity) {
    groups.emplace_back(width, std::min(capacity, batch - s), alpha);
    if (h_rows) groups.back().load_h(h_rows + int64_t(s) * width);
    if (g_rows) groups.back().load_g(g_rows + int64_t(s) * width);
  }
  return groups;
}

// Threads worth using for `groups` groups and this much work.
static int threads_for(int threads, int groups, int64_t work) {
  return int(std::max<int64_t>(1, std::min<int64_t>({int64_t(threads), int64_t(groups), work / kMinWorkPerThread})));
}

// --- the chunk forward ------------------------------------------------------------------------

// The chunk's output; with `bounds` (rows, one (B, w) block per sub-chunk of
// `sub_chunk_layers`), also the input of every sub-chunk, for the backward. Each thread walks its
// groups together.
template <typename T, class G>
static void chunk_forward(int threads, int batch, int w, int64_t layers, T alpha, const T* h, const T* weights,
                          const T* biases, T* out, T* bounds) {
  const int64_t ww = int64_t(w) * w;
  std::vector<G> groups = make_groups<T, G>(batch, w, alpha, h, nullptr);
  const int n_groups = int(groups.size());
  const int capacity = G::capacity(batch);
  const int used = threads_for(threads, n_groups, int64_t(batch) * ww * std::max<int64_t>(layers, 1));
  const int64_t sub = bounds ? sub_chunk_layers<T>(w, batch) : std::max<int64_t>(layers, 1);
  run_threads(used, [&](int t) {
    const int q0 = n_groups * t / used, q1 = n_groups * (t + 1) / used;
    for (int64_t first = 0; first < layers; first += sub) {
      const int64_t count = std::min(sub, layers - first);
      if (bounds)
        for (int q = q0; q < q1; ++q) groups[q].store_h(bounds + ((first / sub) * batch + int64_t(q) * capacity) * w);
      if constexpr (G::kLaneGroup) {
        G::forward_together(&groups[q0], q1 - q0, weights + first * ww, biases + first * w, count);
      } else {
        for (int q = q0; q < q1; ++q) groups[q].template forward<false>(weights + first * ww, biases + first * w, count, nullptr);
      }
    }
    for (int q = q0; q < q1; ++q) groups[q].store_h(out + int64_t(q) * capacity * w);
  });
}

// --- the chunk backward -----------------------------------------------------------------------

// The backward of a chunk of lane groups (see the top of this file). With `lr` it writes
// W - lr dW and b - lr db to out_w / out_b, else dW and db; out_w / out_b may be weights /
// biases (an in-place update: every layer's weights are read, by every thread, before its
// result is written). `bounds` are the forward's sub-chunk inputs, or null.
template <typename T, class G>
static void chunk_backward_lanes(int threads, int batch, int w, int64_t layers, T alpha, const T* h_start,
                                 const T* g_end, const T* weights, const T* biases, const T* lr, T* g_start, T* out_w,
                                 T* out_b, const T* bounds) {
  using V = typename G::V;
  const int64_t ww = int64_t(w) * w;
  std::vector<G> groups = make_groups<T, G>(batch, w, alpha, h_start, g_end);
  const int n_groups = int(groups.size());
  const int capacity = G::capacity(batch);
  const int used = threads_for(threads, n_groups, int64_t(batch) * ww * layers);
  const int64_t sub = sub_chunk_layers<T>(w, batch);
  const int64_t subs = (layers + sub - 1) / sub;
  auto count_of = [&](int64_t c) { return std::min(sub, layers - c * sub); };
  // One group on one thread sums each layer's gradient right after its chain step; otherwise
  // a stage sums the sub-chunk walked back in the stage before (all groups' chains are done
  // by then), and three sub-chunks' buffers rotate.
  const bool inline_sums = n_groups == 1;
  const int rotation = inline_sums ? 2 : 3;
  std::vector<T> own_bounds;
  if (!bounds) own_bounds.resize(size_t(subs * batch * w));
  std::vector<std::unique_ptr<AlignedArray<T>>> kept;
  const int64_t kept_size = G::buffer_per_layer(w, capacity) * sub;
  for (int k = 0; k < rotation * n_groups; ++k) kept.emplace_back(new AlignedArray<T>(kept_size));
  auto kept_layer = [&](int q, int64_t c, int64_t i) {
    return reinterpret_cast<V*>(kept[size_t(q * rotation + c % rotation)]->get()) + i * G::kLayerVectors;
  };
  Barrier barrier(used);
  run_threads(used, [&](int t) {
    const int q0 = n_groups * t / used, q1 = n_groups * (t + 1) / used;
    const T* rows = bounds;
    if (!bounds) {  // a first walk finds the sub-chunk inputs
      T* own = own_bounds.data();
      for (int64_t c = 0; c < subs; ++c) {
        for (int q = q0; q < q1; ++q) groups[q].store_h(own + (c * batch + int64_t(q) * capacity) * w);
        if (c + 1 < subs) G::forward_together(&groups[q0], q1 - q0, weights + c * sub * ww, biases + c * sub * w, sub);
      }
      rows = own;
    }
    alignas(kAlignment) V acc[G::kPartial];
    std::vector<V*> dbuf(static_cast<size_t>(n_groups));
    const int64_t last = inline_sums ? 0 : -1;
    for (int64_t c = subs; c >= last; --c) {
      // This stage walks sub-chunk c back, recomputes c - 1, and sums the gradients of
      // `d` (c itself when inline, else c + 1).
      const int64_t rcount = (c < subs && c >= 0) ? count_of(c) : 0;
      const int64_t fcount = c >= 1 ? count_of(c - 1) : 0;
      const int64_t d = inline_sums ? c : c + 1;
      int64_t d_lo = 0, d_count = 0;
      if (d >= 0 && d < subs) {
        d_lo = count_of(d) * t / used;
        d_count = count_of(d) * (t + 1) / used - d_lo;
      }
      const int64_t rfirst = std::max<int64_t>(c, 0) * sub, ffirst = std::max<int64_t>(c - 1, 0) * sub;
      for (int q = q0; q < q1; ++q) {
        if (fcount) groups[q].load_h(rows + ((c - 1) * batch + int64_t(q) * capacity) * w);
        const T* rw = weights + rfirst * ww;
        const T* fw = weights + ffirst * ww;
        const T* fb = biases + ffirst * w;
        V* rbuf = kept_layer(q, std::max<int64_t>(c, 0), 0);
        V* fbuf = kept_layer(q, std::max<int64_t>(c - 1, 0), 0);
        if (inline_sums) {
          groups[q].stage_direct(rw, biases + rfirst * w, rcount, rbuf, lr, out_w + rfirst * ww, out_b + rfirst * w, fw,
                                 fb, fcount, fbuf);
        } else {
          // layer d_lo + i of sub-chunk d, over every group
          if (d_count)
            for (int p = 0; p < n_groups; ++p) dbuf[p] = kept_layer(p, d, d_lo);
          auto sums = [&](int64_t i) __attribute__((always_inline)) {
            const int64_t layer = d * sub + d_lo + i;
            G::add_products(dbuf[0] + i * G::kLayerVectors, acc, true);
            for (int p = 1; p < n_groups; ++p) G::add_products(dbuf[p] + i * G::kLayerVectors, acc, false);
            G::finish(acc, weights + layer * ww, biases + layer * w, lr, out_w + layer * ww, out_b + layer * w);
          };
          groups[q].stage(rw, rcount, rbuf, fw, fb, fcount, fbuf, q == q0 ? d_count : 0, sums);
        }
      }
      if (!inline_sums) barrier.wait();
    }
  });
  for (int q = 0; q < n_groups; ++q) groups[q].store_g(g_start + int64_t(q) * capacity * w);
}

// The backward of a chunk walked sample by sample (other widths, small batches): one thread,
// sub-chunks of the chunk, last first, each recomputed from its boundary and walked back.
template <typename T, class G>
static void chunk_backward_samples(int batch, int w, int64_t layers, T alpha, const T* h_start, const T* g_end,
                                   const T* weights, const T* biases, const T* lr, T* g_start, T* out_w, T* out_b) {
  const int64_t ww = int64_t(w) * w;
  G group(w, batch, alpha);
  group.load_h(h_start);
  group.load_g(g_end);
  const int64_t stride = G::partial_stride(w);
  const int64_t group_layer = G::buffer_per_layer(w, batch);
  const int64_t sub = std::max<int64_t>(1, std::min<int64_t>(layers, 2 * kSubChunkBytes / (group_layer * int64_t(sizeof(T)))));
  const int64_t subs = (layers + sub - 1) / sub;
  const int64_t state = group.state_size();
  std::vector<T> bounds(size_t(subs * state));
  for (int64_t c = 0; c < subs; ++c) {
    group.save(&bounds[c * state]);
    if (c + 1 < subs) group.template forward<false>(weights + c * sub * ww, biases + c * sub * w, sub, nullptr);
  }
  AlignedArray<T> kept(group_layer * sub);
  AlignedArray<T> partial(sub * stride);
  for (int64_t c = subs - 1; c >= 0; --c) {
    const int64_t first = c * sub, count = std::min(sub, layers - first);
    const T* layer_w = weights + first * ww;
    const T* layer_b = biases + first * w;
    group.restore(&bounds[c * state]);
    group.template forward<true>(layer_w, layer_b, count, kept.get());
    std::fill(partial.get(), partial.get() + count * stride, T(0));
    group.reverse(layer_w, count, kept.get(), partial.get());
    for (int64_t i = 0; i < count; ++i) {
      const T* sum = partial.get() + i * stride;
      write_result(sum, layer_w + i * ww, ww, lr, out_w + (first + i) * ww);
      write_result(sum + ww, layer_b + i * w, w, lr, out_b + (first + i) * w);
    }
  }
  group.store_g(g_start);
}

template <typename T, class G>
static void chunk_backward(int threads, int batch, int w, int64_t layers, T alpha, const T* h_start, const T* g_end,
                           const T* weights, const T* biases, const T* lr, T* g_start, T* out_w, T* out_b,
                           const T* bounds = nullptr) {
  if constexpr (G::kLaneGroup) {
    chunk_backward_lanes<T, G>(threads, batch, w, layers, alpha, h_start, g_end, weights, biases, lr, g_start, out_w,
                               out_b, bounds);
  } else {
    chunk_backward_samples<T, G>(batch, w, layers, alpha, h_start, g_end, weights, biases, lr, g_start, out_w, out_b);
  }
}

// --- dispatch: dtype x activation x width ---------------------------------------------------

// The lane group for a width and batch: samples as SIMD lanes for widths 1, 2, 4 and 8 (and a
// batch of a vector or more), else sample by sample. One thread takes the batch in groups of
// up to two vectors (width 4) or four (widths 1 and 2); two threads take whole vectors each,
// and a batch of one vector is two half-width vectors (AVX-512: two 8-lane halves of the
// 16-lane vector). Every choice adds the weight gradients in the same order: whole vectors in
// sample order, then lane halves, so one and two threads give the same bits. `forward_only`
// (no gradients) is free to take narrower groups.
template <typename T, class Act, class F>
static void with_group(int width, int batch, int threads, bool forward_only, F&& f) {
  constexpr int lanes = Simd<T>::lanes;
  constexpr int half = kVectorBytes / 2;
  if (batch >= lanes) {
    const bool two = threads >= 2;
    switch (width) {
      case 1:
        if ((two && batch <= 4 * lanes) || forward_only) return f(static_cast<LaneGroup<T, 1, 1, Act>*>(nullptr));
        return f(static_cast<LaneGroup<T, 1, 4, Act>*>(nullptr));
      case 2:
        if ((two && batch <= 4 * lanes) || forward_only) return f(static_cast<LaneGroup<T, 2, 1, Act>*>(nullptr));
        return f(static_cast<LaneGroup<T, 2, 4, Act>*>(nullptr));
      case 4:
        if constexpr (half >= 16) {
          if (two && batch <= lanes) return f(static_cast<LaneGroup<T, 4, 1, Act, half>*>(nullptr));
        }
        if (batch <= lanes || (two && batch <= 2 * lanes)) return f(static_cast<LaneGroup<T, 4, 1, Act>*>(nullptr));
        return f(static_cast<LaneGroup<T, 4, 2, Act>*>(nullptr));
      case 8: return f(static_cast<LaneGroup<T, 8, 1, Act>*>(nullptr));
      default: break;
    }
  }
  return f(static_cast<SampleGroup<T, Act>*>(nullptr));
}

template <typename T, class F>
static void with_activation(const std::string& activation, int width, int batch, int threads, bool forward_only,
                            F&& f) {
  if (activation == "softsign") return with_group<T, Softsign>(width, batch, threads, forward_only, f);
  if (activation == "tanh") return with_group<T, Tanh>(width, batch, threads, forward_only, f);
  return with_group<T, Relu>(width, batch, threads, forward_only, f);
}

}  // namespace zoo_deep

#endif  // ZOO_DEEP_CORE_KERNELS_H_
