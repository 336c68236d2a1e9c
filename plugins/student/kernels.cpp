// The fused element-wise layers of kernels.h. Built at -O3 with -ffast-math
// (meson.build), so GCC vectorises the row sums and calls glibc's vector
// expf; nothing here tests for NaN or infinity.
#include "kernels.h"

#include <cmath>

namespace distill::student {

void rms_norm_forward(const float* x, const float* w, std::size_t rows, std::size_t width, float eps, float* y,
                      float* inv_rms) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* in = x + r * width;
    float* out = y + r * width;
    float squares = 0;
    for (std::size_t i = 0; i < width; ++i) squares += in[i] * in[i];
    const float scale = 1.0f / std::sqrt(squares / static_cast<float>(width) + eps);
    inv_rms[r] = scale;
    for (std::size_t i = 0; i < width; ++i) out[i] = in[i] * scale * w[i];
  }
}

void rms_norm_backward(const float* dy, const float* x, const float* w, const float* inv_rms, std::size_t rows,
                       std::size_t width, float* dx, float* dw) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* grad = dy + r * width;
    const float* in = x + r * width;
    float* out = dx + r * width;
    const float scale = inv_rms[r];
    float dot = 0;  // sum of dy * w * x
    for (std::size_t i = 0; i < width; ++i) {
      dot += grad[i] * w[i] * in[i];
      dw[i] += grad[i] * in[i] * scale;
    }
    const float correction = scale * scale * scale * dot / static_cast<float>(width);
    for (std::size_t i = 0; i < width; ++i) out[i] = scale * grad[i] * w[i] - correction * in[i];
  }
}

namespace {

// One position of one head: out = scale * (in * c + rotate_half(in) * s),
// or, backward, its transpose (the rotation's sign flips).
template <bool kBackward>
void rotate_row(const float* __restrict in, const float* __restrict c, const float* __restrict s, std::size_t half,
                float scale, float* __restrict out) {
  for (std::size_t i = 0; i < half; ++i) {
    if constexpr (kBackward) {
      out[i] = scale * (in[i] * c[i] + in[i + half] * s[i + half]);
      out[i + half] = scale * (in[i + half] * c[i + half] - in[i] * s[i]);
    } else {
      out[i] = scale * (in[i] * c[i] - in[i + half] * s[i]);
      out[i + half] = scale * (in[i + half] * c[i + half] + in[i] * s[i + half]);
    }
  }
}

// Every position of every head, from one layout to the other: forward from
// the projection's [B, T, H, D] to attention's [B, H, T, D], backward the
// other way.
template <bool kBackward>
void rope_pass(const float* from, const float* cos, const float* sin, const RopeShape& shape, float scale, float* to) {
  const std::size_t batch = shape.batch, length = shape.length, heads = shape.heads, dim = shape.dim;
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t t = 0; t < length; ++t) {
        const std::size_t projected = ((b * length + t) * heads + h) * dim, attention = ((b * heads + h) * length + t) * dim;
        rotate_row<kBackward>(from + (kBackward ? attention : projected), cos + t * dim, sin + t * dim, dim / 2, scale,
                              to + (kBackward ? projected : attention));
      }
}

}  // namespace

void rope_forward(const float* x, const float* cos, const float* sin, const RopeShape& shape, float scale, float* y) {
  rope_pass<false>(x, cos, sin, shape, scale, y);
}

void rope_backward(const float* dy, const float* cos, const float* sin, const RopeShape& shape, float scale,
                   float* dx) {
  rope_pass<true>(dy, cos, sin, shape, scale, dx);
}

void swiglu_forward(const float* gate, const float* up, std::size_t count, float* out) {
  for (std::size_t i = 0; i < count; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void swiglu_backward(const float* dout, const float* gate, const float* up, std::size_t count, float* dgate,
                     float* dup) {
  for (std::size_t i = 0; i < count; ++i) {
    const float sigmoid = 1.0f / (1.0f + std::exp(-gate[i]));
    dup[i] = dout[i] * gate[i] * sigmoid;
    dgate[i] = dout[i] * up[i] * sigmoid * (1.0f + gate[i] * (1.0f - sigmoid));
  }
}

}  // namespace distill::student
