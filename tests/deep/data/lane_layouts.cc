// One and two threads of the lane-group kernels, with this build's vector width
// (ZOO_DEEP_VECTOR_BYTES): prints whether they give the same bits, and a fingerprint.
#include <cstdio>
#include <cstring>
#include <vector>
#include "deep_core_kernels.h"
using namespace zoo_deep;
template <typename T>
static bool run(int batch, int width, long layers, unsigned seed, double* fingerprint) {
  std::vector<T> h(batch * width), g(batch * width), W(layers * width * width), b(layers * width);
  unsigned s = seed;
  auto next = [&] { s = s * 1664525u + 1013904223u; return T((s >> 8) * (1.0 / 16777216.0) - 0.5); };
  for (auto& x : h) x = next();
  for (auto& x : g) x = next();
  for (auto& x : W) x = next();
  for (auto& x : b) x = T(0.2) * next();
  T alpha = T(0.05), lr = T(0.1);
  std::vector<T> out[2][3];
  for (int threads = 1; threads <= 2; ++threads) {
    std::vector<T> w2 = W, b2 = b, gs(batch * width), ho(batch * width);
    std::vector<T> bounds(((layers + sub_chunk_layers<T>(width, batch) - 1) / sub_chunk_layers<T>(width, batch)) * batch * width);
    with_activation<T>("softsign", width, batch, threads, false, [&](auto* group) {
      using G = std::remove_pointer_t<decltype(group)>;
      chunk_forward<T, G>(threads, batch, width, layers, alpha, h.data(), w2.data(), b2.data(), ho.data(), bounds.data());
      chunk_backward<T, G>(threads, batch, width, layers, alpha, h.data(), g.data(), w2.data(), b2.data(), &lr,
                           gs.data(), w2.data(), b2.data(), bounds.data());
    });
    out[threads - 1][0] = gs; out[threads - 1][1] = w2; out[threads - 1][2] = ho;
  }
  double f = 0;
  for (auto x : out[0][1]) f += double(x) * double(x);
  *fingerprint = f;
  for (int k = 0; k < 3; ++k)
    if (std::memcmp(out[0][k].data(), out[1][k].data(), out[0][k].size() * sizeof(T))) return false;
  return true;
}
int main() {
  int bad = 0;
  struct Case { int batch, width; long layers; } cases[] = {{16, 4, 3000}, {8, 4, 700}, {12, 4, 700}, {32, 4, 1500}, {24, 4, 900}, {20, 2, 700}, {16, 8, 500}, {48, 8, 300}, {16, 1, 700}};
  for (auto c : cases) {
    double f32, f64;
    bool a = run<float>(c.batch, c.width, c.layers, 7, &f32), d = run<double>(c.batch, c.width, c.layers, 9, &f64);
    printf("lanes=%d batch=%d width=%d layers=%ld float32 %s float64 %s  %.12g %.15g\n", int(kVectorBytes / 4), c.batch, c.width, c.layers,
           a ? "same" : "DIFFER", d ? "same" : "DIFFER", f32, f64);
    bad += !a + !d;
  }
  return bad ? 1 : 0;
}
