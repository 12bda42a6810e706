// The deep core's chunk kernels in plain C++ (no TensorFlow): deep_core_ops.cc wraps them as
// TensorFlow ops, and a standalone program can time them.
//
// Shapes: h (B, w), weights (n, w, w) with row j the input coordinate, biases (n, w).
//
// Layout. For widths 1, 2, 4 and 8 (and a batch of at least one SIMD vector) a lane group keeps
// each coordinate as `NV` SIMD vectors whose lanes are samples: width 4, batch 16, float32 on
// AVX2 is four planes of two 8-lane vectors. Other widths, and smaller batches, go sample by
// sample, vectorized over the width.
//
// Backward. A first walk over the chunk keeps only sub-chunk boundaries (every S layers, S chosen
// so a sub-chunk's layer inputs and activation derivatives fit in L2). Then per sub-chunk, last
// first: recompute the layer inputs h_i and act'(z_i) from its boundary, and walk its layers in
// reverse: dz_i = alpha g act'(z_i), dW_i = h_i^T dz_i, db_i = sum(dz_i), g <- g + dz_i W_i^T
// with the pre-update W_i, and write W_i - lr dW_i (or dW_i). Every layer's gradient is taken
// with its pre-update weights, so this is exactly one plain SGD step.
//
// Threads split the batch into lane groups, one or more per thread: each thread walks its own
// samples alone (forward, recomputation, reverse walk). A walk is bound by one layer's chain
// of dependent instructions and by the divider's throughput, so a group of one vector of
// samples per thread runs each layer in about two thirds of the time two vectors take on one.
// In the backward each thread walks its samples' dependent chain and keeps each layer's dz; the
// threads meet once per sub-chunk, then each sums the weight gradients of half the sub-chunk's
// layers over all samples, lane by lane in the order one group holding every lane uses (with
// `opaque` fixing where the compiler fuses multiply-adds), and updates them: one and two
// threads give the same bits.

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

namespace zoo_deep {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

// One SIMD register of T (GCC/Clang vector extensions: the compiler picks the instructions).
template <typename T>
struct Simd {
  typedef T type __attribute__((vector_size(kVectorBytes)));
  static constexpr int lanes = kVectorBytes / sizeof(T);
};

// Bytes of a thread's recomputed layer inputs and derivatives per sub-chunk: well inside a
// 512 KiB L2.
constexpr int64_t kSubChunkBytes = 192 * 1024;
// Per thread and parity when threads split the batch (both parities and the other thread's
// buffer are read by each thread).
constexpr int64_t kSplitSubChunkBytes = 96 * 1024;
// Below this many multiply-adds per call a second thread costs more than it saves.
constexpr int64_t kMinWorkPerThread = 1 << 16;

// --- activations ------------------------------------------------------------------------------
//
// `step(h, z, alpha, d)` is one layer's update `h + alpha act(z)` and, when `d` is given, writes
// act'(z) there for the reverse walk. Written so the chain from z to the new h is short: every
// walk is bound by that chain's latency.

// |x| of a vector by clearing the sign bits (one instruction, where a compare-and-select is three).
template <typename X>
static inline X absolute(X x) {
  using Bits = std::conditional_t<sizeof(x[0]) == 8, int64_t, int32_t>;
  typedef Bits Mask __attribute__((vector_size(sizeof(X))));
  const Mask sign = Mask{} + Bits(uint64_t(1) << (8 * sizeof(Bits) - 1));
  return (X)((Mask)x & ~sign);
}

struct Softsign {
  // softsign(z) = z / (1 + |z|), softsign'(z) = 1 / (1 + |z|)^2: one division for both.
  template <typename X, typename T>
  static inline X step(X h, X z, T alpha, X* derivative) {
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
  static inline X step(X h, X z, T alpha, X* derivative) {
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
  static inline X step(X h, X z, T alpha, X* derivative) {
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

// `x`, as a value the compiler must compute before using it: `opaque(a * b) + c * d` can only
// become fma(c, d, a * b), never fma(a, b, c * d). Sums of products written with it round the
// same way wherever they are computed (one group's walk, or several groups' added later).
template <typename X>
static inline X opaque(X x) {
#if defined(__x86_64__) || defined(__i386__)
  asm("" : "+x"(x));
#elif defined(__aarch64__)
  asm("" : "+w"(x));
#else
  asm("" : "+m"(x));
#endif
  return x;
}

// sum_j x[j] * w[j * W] (+ start): two interleaved chains, so the latency is about half a serial
// sum's.
template <int W, int Stride, typename V, typename T>
static inline V dot(const V* x, int x_stride, const T* w, V start) {
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
// twice as many inputs of P / 2 lanes (x's inputs first), by adding each input's two halves.
template <int P, typename V, std::size_t... O>
static inline V fold(V x, V y, std::index_sequence<O...>) {
  constexpr int half = P / 2;
  V low = __builtin_shufflevector(x, y, int((O / half) * P + O % half)...);
  V high = __builtin_shufflevector(x, y, int((O / half) * P + O % half + half)...);
  return low + high;
}

template <int P, int Count, int Lanes, typename V>
static inline void fold_levels(V* a) {
  if constexpr (P >= 2) {
    for (int m = 0; m < Count / 2; ++m) a[m] = fold<P>(a[2 * m], a[2 * m + 1], std::make_index_sequence<Lanes>());
    fold_levels<P / 2, Count / 2, Lanes>(a);
  }
}

// a[0..Count) are vectors; afterwards a[m] lane l holds the lane sum of input m * Lanes + l.
template <int Count, int Lanes, typename V>
static inline void sum_lanes(V* a) {
  static_assert(Count % Lanes == 0, "pad the inputs to whole vectors");
  fold_levels<Lanes, Count, Lanes>(a);
}

// One layer's result from its summed gradient: `old - lr * gradient`, or the gradient when `lr`
// is null. `out` may be `old`.
template <typename T>
static inline void write_result(const T* gradient, const T* old, int64_t size, const T* lr, T* out) {
  if (lr) {
    const T rate = *lr;
    for (int64_t m = 0; m < size; ++m) out[m] = old[m] - rate * gradient[m];
  } else {
    std::copy_n(gradient, size, out);
  }
}

// --- a lane group of a small compile-time width: samples as SIMD lanes ------------------------

template <typename T, int W, int NV, class Act>
class LaneGroup {
 public:
  using V = typename Simd<T>::type;
  static constexpr int kLanes = Simd<T>::lanes;
  static constexpr int kCapacity = NV * kLanes;             // samples per group
  static constexpr int kPartial = ((W * W + W + kLanes - 1) / kLanes) * kLanes;  // dW, db, pad
  static constexpr int64_t kStateSize = W * NV * kLanes;   // in T
  static constexpr bool kDirect = true;  // `reverse` writes each layer's result itself

  static int capacity(int) { return kCapacity; }
  int64_t state_size() const { return kStateSize; }
  static int64_t buffer_per_layer(int, int) { return 2 * W * NV * kLanes; }

  LaneGroup(int width, int samples, T alpha) : samples_(samples), alpha_(alpha) {}

  // rows: (samples, W). Padding lanes repeat sample 0 (finite, like a real sample) and get a
  // zero gradient, so they add nothing to the weight gradients.
  void load_h(const T* rows) { load(rows, h_, true); }
  void load_g(const T* rows) { load(rows, g_, false); }
  void store_h(T* rows) const { store(h_, rows); }
  void store_g(T* rows) const { store(g_, rows); }
  void save(T* dst) const { std::memcpy(dst, h_, sizeof(h_)); }
  void restore(const T* src) { std::memcpy(h_, src, sizeof(h_)); }

  // Walks `layers` layers; with Keep, writes each layer's input and act'(z) to `buffer`.
  template <bool Keep>
  void forward(const T* weights, const T* biases, int64_t layers, V* buffer) {
    V h[W][NV];
    std::memcpy(h, h_, sizeof(h));
    const T alpha = alpha_;
    for (int64_t i = 0; i < layers; ++i) {
      const T* w = weights + i * W * W;
      const T* b = biases + i * W;
      V z[W][NV];
      for (int k = 0; k < W; ++k)
        for (int v = 0; v < NV; ++v) z[k][v] = dot<W, W>(&h[0][v], NV, w + k, V{} + b[k]);
      if constexpr (Keep) {
        V* keep = buffer + i * 2 * W * NV;
        for (int k = 0; k < W; ++k)
          for (int v = 0; v < NV; ++v) keep[k * NV + v] = h[k][v];
        for (int k = 0; k < W; ++k)
          for (int v = 0; v < NV; ++v) h[k][v] = Act::step(h[k][v], z[k][v], alpha, &keep[(W + k) * NV + v]);
      } else {
        for (int k = 0; k < W; ++k)
          for (int v = 0; v < NV; ++v) h[k][v] = Act::step(h[k][v], z[k][v], alpha, static_cast<V*>(nullptr));
      }
    }
    std::memcpy(h_, h, sizeof(h));
  }

  // The reverse walk over `layers` layers kept in `buffer`, this group holding the whole batch:
  // writes each layer's result itself, `W - lr dW` and `b - lr db` to out_w / out_b (dW and db
  // when `lr` is null). Layer i's weights are read before its result is written, so out_w may
  // be `weights` (an in-place update).
  void reverse(const T* weights, const T* biases, int64_t layers, const V* buffer, const T* lr, T* out_w, T* out_b) {
    V g[W][NV];
    std::memcpy(g, g_, sizeof(g));
    const T alpha = alpha_;
    for (int64_t i = layers - 1; i >= 0; --i) {
      const T* w = weights + i * W * W;
      const V* h = buffer + i * 2 * W * NV;
      const V* d = h + W * NV;
      V dz[W][NV];
      for (int k = 0; k < W; ++k)
        for (int v = 0; v < NV; ++v) dz[k][v] = (alpha * d[k * NV + v]) * g[k][v];
      for (int j = 0; j < W; ++j)
        for (int v = 0; v < NV; ++v) g[j][v] += dot<W, 1>(&dz[0][v], NV, w + j * W, V{});
      V sums[kPartial];
      for (int j = 0; j < W; ++j)
        for (int k = 0; k < W; ++k) {
          V s = opaque(h[j * NV] * dz[k][0]);
          for (int v = 1; v < NV; ++v) s += h[j * NV + v] * dz[k][v];
          sums[j * W + k] = s;
        }
      for (int k = 0; k < W; ++k) {
        V s = dz[k][0];
        for (int v = 1; v < NV; ++v) s += dz[k][v];
        sums[W * W + k] = s;
      }
      for (int m = W * W + W; m < kPartial; ++m) sums[m] = V{};
      finish(sums, w, biases + i * W, lr, out_w + i * W * W, out_b + i * W);
    }
    std::memcpy(g_, g, sizeof(g));
  }

  // The reverse walk's dependent chain alone, for threads that split the batch: g <- g +
  // dz_i W_i^T (pre-update W_i), writing dz_i over act'(z_i) in `buffer`. The weight gradients
  // are summed afterwards, layer by layer, by `add_products` and `finish`.
  void reverse_deferred(const T* weights, int64_t layers, V* buffer) {
    V g[W][NV];
    std::memcpy(g, g_, sizeof(g));
    const T alpha = alpha_;
    for (int64_t i = layers - 1; i >= 0; --i) {
      const T* w = weights + i * W * W;
      V* d = buffer + i * 2 * W * NV + W * NV;
      V dz[W][NV];
      for (int k = 0; k < W; ++k)
        for (int v = 0; v < NV; ++v) d[k * NV + v] = dz[k][v] = (alpha * d[k * NV + v]) * g[k][v];
      for (int j = 0; j < W; ++j)
        for (int v = 0; v < NV; ++v) g[j][v] += dot<W, 1>(&dz[0][v], NV, w + j * W, V{});
    }
    std::memcpy(g_, g, sizeof(g));
  }

  // Adds one layer's h^T dz and sum(dz) from `reverse_deferred`'s buffer to `acc` (kPartial
  // vectors), lane by lane; `first` starts `acc` instead. The same sums, in the same order, as
  // the reverse walk of one group holding all these lanes.
  static void add_products(const V* layer, V* acc, bool first) {
    const V* h = layer;
    const V* dz = layer + W * NV;
    for (int j = 0; j < W; ++j)
      for (int k = 0; k < W; ++k) {
        V s = first ? opaque(h[j * NV] * dz[k * NV]) : acc[j * W + k] + h[j * NV] * dz[k * NV];
        for (int v = 1; v < NV; ++v) s += h[j * NV + v] * dz[k * NV + v];
        acc[j * W + k] = s;
      }
    for (int k = 0; k < W; ++k) {
      V s = first ? dz[k * NV] : acc[W * W + k] + dz[k * NV];
      for (int v = 1; v < NV; ++v) s += dz[k * NV + v];
      acc[W * W + k] = s;
    }
    if (first)
      for (int m = W * W + W; m < kPartial; ++m) acc[m] = V{};
  }

  // One layer's result from its `add_products` sums.
  static void finish(V* acc, const T* w, const T* b, const T* lr, T* out_w, T* out_b) {
    sum_lanes<kPartial, kLanes>(acc);
    const T* total = reinterpret_cast<const T*>(acc);
    write_result(total, w, W * W, lr, out_w);
    write_result(total + W * W, b, W, lr, out_b);
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

  alignas(kVectorBytes) V h_[W][NV];
  alignas(kVectorBytes) V g_[W][NV];
  int samples_;
  T alpha_;
};

// --- a group of any width: sample by sample, vectorized over the width ------------------------

template <typename T, class Act>
class SampleGroup {
 public:
  using V = T;

  static constexpr bool kDirect = false;  // `reverse` adds to partial sums
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
    for (int spins = 0; spins < 4000; ++spins) {
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

// Samples [begin, end) of thread t: whole blocks of `block` samples, as even as possible.
static std::pair<int, int> samples_of(int t, int threads, int batch, int block) {
  const int blocks = (batch + block - 1) / block;
  const int first = int(int64_t(blocks) * t / threads), last = int(int64_t(blocks) * (t + 1) / threads);
  return {std::min(batch, first * block), std::min(batch, last * block)};
}

struct Problem {
  int batch, width;
  int64_t layers;
  int threads;
  int block;  // thread split granularity in samples
};

template <typename T, class G>
static Problem plan(int batch, int width, int64_t layers, int threads, int block) {
  const int64_t work = int64_t(batch) * width * width * std::max<int64_t>(layers, 1);
  const int64_t by_work = std::max<int64_t>(1, work / kMinWorkPerThread);
  const int blocks = (batch + block - 1) / block;
  const int used = int(std::max<int64_t>(1, std::min<int64_t>({int64_t(threads), int64_t(blocks), by_work})));
  return {batch, width, layers, used, block};
}

// A zeroed array of T aligned for whole-vector loads and stores.
template <typename T>
class AlignedArray {
 public:
  explicit AlignedArray(int64_t size)
      : data_(new (std::align_val_t(kVectorBytes)) T[std::max<int64_t>(size, 1)]()) {}
  ~AlignedArray() { operator delete[](data_, std::align_val_t(kVectorBytes)); }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  T* get() const { return data_; }

 private:
  T* data_;
};

template <typename T, class G>
static void chunk_forward(const Problem& p, T alpha, const T* h, const T* weights, const T* biases, T* out) {
  run_threads(p.threads, [&](int t) {
    auto [begin, end] = samples_of(t, p.threads, p.batch, p.block);
    for (int s = begin; s < end; s += G::capacity(end - begin)) {
      const int n = std::min(G::capacity(end - begin), end - s);
      G group(p.width, n, alpha);
      group.load_h(h + int64_t(s) * p.width);
      group.template forward<false>(weights, biases, p.layers, nullptr);
      group.store_h(out + int64_t(s) * p.width);
    }
  });
}

// The backward of a chunk with the batch split between `used` >= 2 threads (lane groups only).
// Per sub-chunk, last first, each thread recomputes its own groups' layer inputs and walks their
// dependent chain back (`reverse_deferred`, keeping each layer's dz); the threads meet once;
// then each sums the weight gradients of its share of the sub-chunk's layers over all groups
// (in group order) and writes those layers' results. The kept buffers are double-buffered by
// sub-chunk parity, so a thread may recompute the next sub-chunk while the other still reads
// this one's.
template <typename T, class G>
static void chunk_backward_split(std::vector<G>& groups, int used, int64_t layers, int w, int64_t group_layer,
                                 const T* weights, const T* biases, const T* lr, T* out_w, T* out_b) {
  using V = typename G::V;
  const int64_t ww = int64_t(w) * w;
  const int n_groups = int(groups.size());
  auto first_group = [&](int t) { return n_groups * t / used; };
  const int most_groups = (n_groups + used - 1) / used;
  const int64_t layer_bytes = group_layer * most_groups * int64_t(sizeof(T));
  const int64_t sub = std::max<int64_t>(1, std::min<int64_t>(layers, kSplitSubChunkBytes / layer_bytes));
  const int64_t subs = (layers + sub - 1) / sub;
  const int64_t state = groups[0].state_size();
  std::vector<T> bounds(size_t(subs * state * n_groups));
  std::vector<std::unique_ptr<AlignedArray<T>>> kept;
  for (int k = 0; k < 2 * used; ++k) kept.emplace_back(new AlignedArray<T>(group_layer * sub * most_groups));
  std::vector<int> owner(n_groups);
  for (int t = 0; t < used; ++t)
    for (int q = first_group(t); q < first_group(t + 1); ++q) owner[q] = t;
  // Group q's kept layer i (of the sub-chunk with parity `parity`).
  auto kept_layer = [&](int q, int parity, int64_t i) {
    const int t = owner[q];
    return reinterpret_cast<V*>(kept[2 * t + parity]->get() + ((q - first_group(t)) * sub + i) * group_layer);
  };
  Barrier barrier(used);
  run_threads(used, [&](int t) {
    const int q0 = first_group(t), q1 = first_group(t + 1);
    for (int q = q0; q < q1; ++q)
      for (int64_t c = 0; c < subs; ++c) {
        groups[q].save(&bounds[(q * subs + c) * state]);
        if (c + 1 < subs) groups[q].template forward<false>(weights + c * sub * ww, biases + c * sub * w, sub, nullptr);
      }
    V acc[G::kPartial];
    for (int64_t c = subs - 1; c >= 0; --c) {
      const int64_t first = c * sub, count = std::min(sub, layers - first);
      const int parity = int(c & 1);
      for (int q = q0; q < q1; ++q) {
        V* buffer = kept_layer(q, parity, 0);
        groups[q].restore(&bounds[(q * subs + c) * state]);
        groups[q].template forward<true>(weights + first * ww, biases + first * w, count, buffer);
        groups[q].reverse_deferred(weights + first * ww, count, buffer);
      }
      barrier.wait();
      for (int64_t i = count * t / used; i < count * (t + 1) / used; ++i) {
        for (int q = 0; q < n_groups; ++q) G::add_products(kept_layer(q, parity, i), acc, q == 0);
        const int64_t layer = first + i;
        G::finish(acc, weights + layer * ww, biases + layer * w, lr, out_w + layer * ww, out_b + layer * w);
      }
    }
  });
}

// The backward of a chunk. With `lr` it writes W - lr dW and b - lr db to out_w / out_b, else
// dW and db; out_w / out_b may be weights / biases (an in-place update: every layer's weights
// are read, by every thread, before its result is written).
//
// Lane groups: one thread holding the whole batch in one group writes each layer's result in
// its reverse walk; otherwise (two threads, or several groups) `chunk_backward_split`, whose
// sums over groups are added lane by lane before one sum over lanes, exactly as one group
// holding all the lanes adds them: one and two threads give the same bits. Sample-by-sample
// groups (other widths, small batches) hold the whole batch in one group and one thread.
template <typename T, class G>
static void chunk_backward(int threads, int batch, int w, int64_t layers, T alpha, const T* h_start, const T* g_end,
                           const T* weights, const T* biases, const T* lr, T* g_start, T* out_w, T* out_b) {
  const int64_t ww = int64_t(w) * w;
  const int capacity = G::capacity(batch);
  std::vector<G> groups;
  for (int s = 0; s < batch; s += capacity) {
    groups.emplace_back(w, std::min(capacity, batch - s), alpha);
    groups.back().load_h(h_start + int64_t(s) * w);
    groups.back().load_g(g_end + int64_t(s) * w);
  }
  const int n_groups = int(groups.size());
  const int64_t group_layer = G::buffer_per_layer(w, std::min(capacity, batch));  // in T
  auto finish = [&] {
    for (int q = 0; q < n_groups; ++q) groups[q].store_g(g_start + int64_t(q) * capacity * w);
  };
  if constexpr (G::kDirect) {
    const int64_t work = int64_t(batch) * ww * layers;
    const int used = int(std::max<int64_t>(
        1, std::min<int64_t>({int64_t(threads), int64_t(n_groups), work / kMinWorkPerThread})));
    if (used > 1 || n_groups > 1) {
      chunk_backward_split<T, G>(groups, used, layers, w, group_layer, weights, biases, lr, out_w, out_b);
      return finish();
    }
  }
  // One group, one thread: sub-chunks of the chunk, last first, each recomputed from its
  // boundary and walked back.
  G& group = groups[0];
  int64_t stride = 1;
  if constexpr (!G::kDirect) stride = G::partial_stride(w);
  const int64_t sub = std::max<int64_t>(1, std::min<int64_t>(layers, kSubChunkBytes / (group_layer * int64_t(sizeof(T)))));
  const int64_t subs = (layers + sub - 1) / sub;
  const int64_t state = group.state_size();
  std::vector<T> bounds(size_t(subs * state));
  for (int64_t c = 0; c < subs; ++c) {
    group.save(&bounds[c * state]);
    if (c + 1 < subs) group.template forward<false>(weights + c * sub * ww, biases + c * sub * w, sub, nullptr);
  }
  AlignedArray<T> kept(group_layer * sub);
  AlignedArray<T> partial(G::kDirect ? 1 : sub * stride);
  std::vector<T> total(static_cast<size_t>(stride));
  auto buffer = reinterpret_cast<typename G::V*>(kept.get());
  for (int64_t c = subs - 1; c >= 0; --c) {
    const int64_t first = c * sub, count = std::min(sub, layers - first);
    const T* layer_w = weights + first * ww;
    const T* layer_b = biases + first * w;
    group.restore(&bounds[c * state]);
    group.template forward<true>(layer_w, layer_b, count, buffer);
    if constexpr (G::kDirect) {
      group.reverse(layer_w, layer_b, count, buffer, lr, out_w + first * ww, out_b + first * w);
    } else {
      std::fill(partial.get(), partial.get() + count * stride, T(0));
      group.reverse(layer_w, count, buffer, partial.get());
      for (int64_t i = 0; i < count; ++i) {
        const T* sum = partial.get() + i * stride;
        write_result(sum, layer_w + i * ww, ww, lr, out_w + (first + i) * ww);
        write_result(sum + ww, layer_b + i * w, w, lr, out_b + (first + i) * w);
      }
    }
  }
  finish();
}

// --- dispatch: dtype x activation x width ---------------------------------------------------

// The lane group for a width and batch: samples as SIMD lanes for widths 1, 2, 4 and 8 (the
// widest group that still gives every thread a group of its own), else sample by sample.
template <typename T, class Act, class F>
static void with_group(int width, int batch, int threads, F&& f) {
  constexpr int lanes = Simd<T>::lanes;
  if (batch >= lanes) {
    // Narrow groups (one vector of samples) when wide ones would leave a thread without work.
    auto narrow = [&](int wide) {
      return threads >= 2 && (batch + wide - 1) / wide < std::min(threads, (batch + lanes - 1) / lanes);
    };
    switch (width) {
      case 1:
        if (narrow(4 * lanes)) return f(static_cast<LaneGroup<T, 1, 1, Act>*>(nullptr), lanes);
        return f(static_cast<LaneGroup<T, 1, 4, Act>*>(nullptr), 4 * lanes);
      case 2:
        if (narrow(4 * lanes)) return f(static_cast<LaneGroup<T, 2, 1, Act>*>(nullptr), lanes);
        return f(static_cast<LaneGroup<T, 2, 4, Act>*>(nullptr), 4 * lanes);
      case 4:
        if (narrow(2 * lanes)) return f(static_cast<LaneGroup<T, 4, 1, Act>*>(nullptr), lanes);
        return f(static_cast<LaneGroup<T, 4, 2, Act>*>(nullptr), 2 * lanes);
      case 8: return f(static_cast<LaneGroup<T, 8, 1, Act>*>(nullptr), lanes);
      default: break;
    }
  }
  return f(static_cast<SampleGroup<T, Act>*>(nullptr), 1);
}

template <typename T, class F>
static void with_activation(const std::string& activation, int width, int batch, int threads, F&& f) {
  if (activation == "softsign") return with_group<T, Softsign>(width, batch, threads, f);
  if (activation == "tanh") return with_group<T, Tanh>(width, batch, threads, f);
  return with_group<T, Relu>(width, batch, threads, f);
}

}  // namespace zoo_deep

#endif  // ZOO_DEEP_CORE_KERNELS_H_
