// The fused optimiser loops (see adamw.h); built with -O3 so they vectorise.
#include "adamw.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace distill::student {

namespace {

// Sum of squares of sum[i] (+= last[i] first, when there is a last), with
// eight running sums, one per vector lane, so the loop vectorises without
// reordering any one sum; in double, so a long tensor loses nothing.
template <bool kAdd>
double add_and_square(float* __restrict sum, const float* __restrict last, std::size_t size) {
  double lanes[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8)
    for (std::size_t lane = 0; lane < 8; ++lane) {
      if constexpr (kAdd) sum[i + lane] += last[i + lane];
      lanes[lane] += static_cast<double>(sum[i + lane]) * sum[i + lane];
    }
  double total = 0;
  for (; i < size; ++i) {
    if constexpr (kAdd) sum[i] += last[i];
    total += static_cast<double>(sum[i]) * sum[i];
  }
  for (double lane : lanes) total += lane;
  return total;
}

}  // namespace

double add_and_sum_squares(float* sum, const float* const* others, std::size_t count, std::size_t size) {
  if (count == 0) return add_and_square<false>(sum, nullptr, size);
  for (std::size_t k = 0; k + 1 < count; ++k) {
    float* __restrict out = sum;
    const float* __restrict in = others[k];
    for (std::size_t i = 0; i < size; ++i) out[i] += in[i];
  }
  return add_and_square<true>(sum, others[count - 1], size);
}

double clip_scale(double sum_squares, double max_norm) {
  return std::min(1.0, max_norm / (std::sqrt(sum_squares) + 1e-6));
}

void adamw_update(float* value, const float* grad, float* m, float* v, std::size_t size, const AdamWStep& step) {
  const auto t = static_cast<double>(step.step);
  const auto decay = static_cast<float>(1 - step.lr * step.weight_decay);
  const auto scale = static_cast<float>(step.grad_scale);
  const auto beta1 = static_cast<float>(step.beta1), beta2 = static_cast<float>(step.beta2);
  const auto keep1 = static_cast<float>(1 - step.beta1), keep2 = static_cast<float>(1 - step.beta2);
  const auto step_size = static_cast<float>(step.lr / (1 - std::pow(step.beta1, t)));
  const auto correction2 = static_cast<float>(std::sqrt(1 - std::pow(step.beta2, t)));
  const auto eps = static_cast<float>(step.eps);
  float* __restrict p = value;
  const float* __restrict g = grad;
  float* __restrict mean = m;
  float* __restrict square = v;
  for (std::size_t i = 0; i < size; ++i) {
    const float gi = g[i] * scale;
    p[i] *= decay;
    mean[i] = mean[i] * beta1 + gi * keep1;
    square[i] = square[i] * beta2 + gi * gi * keep2;
    p[i] -= step_size * (mean[i] / (std::sqrt(square[i]) / correction2 + eps));
  }
}

}  // namespace distill::student
