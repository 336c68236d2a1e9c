// The model's element-wise layers, each fused into one pass forward and one
// backward on plain float arrays: RMSNorm, rotary positions (with the
// attention's 1/sqrt(head_dim) and the move from a projection's
// [batch, length, heads, dim] to attention's [batch, heads, length, dim]
// layout folded in) and SwiGLU. libtorch runs each as five to ten separate
// operations, each reading and writing the whole activation. No libtorch
// here: model.cpp wraps them as autograd functions.
#pragma once

#include <cstddef>

namespace distill::student {

// y = x * inv_rms * w per row of `width`, with inv_rms = 1 / sqrt(mean(x^2) + eps)
// written per row for the backward pass.
void rms_norm_forward(const float* x, const float* w, std::size_t rows, std::size_t width, float eps, float* y,
                      float* inv_rms);
// Writes dx and adds this block of rows' share of dw (one row of `width`).
void rms_norm_backward(const float* dy, const float* x, const float* w, const float* inv_rms, std::size_t rows,
                       std::size_t width, float* dx, float* dw);

struct RopeShape {
  std::size_t batch, length, heads, dim;
};
// y[b, h, t] = scale * (x[b, t, h] * cos[t] + rotate_half(x[b, t, h]) * sin[t]), with
// rotate_half(v) = (-v[dim/2:], v[:dim/2]) (Hugging Face's convention) and
// cos, sin given from the first position on ([length, dim] each).
void rope_forward(const float* x, const float* cos, const float* sin, const RopeShape& shape, float scale, float* y);
// dx (laid out as x) from dy (laid out as y).
void rope_backward(const float* dy, const float* cos, const float* sin, const RopeShape& shape, float scale,
                   float* dx);

// out = silu(gate) * up, element by element.
void swiglu_forward(const float* gate, const float* up, std::size_t count, float* out);
void swiglu_backward(const float* dout, const float* gate, const float* up, std::size_t count, float* dgate,
                     float* dup);

}  // namespace distill::student
