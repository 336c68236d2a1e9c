// The optimiser's arithmetic on plain float arrays, fused: the shards'
// gradients are added and their norm taken in one pass, and each parameter
// gets its clipped AdamW update in one more pass (libtorch's AdamW and
// clip_grad_norm_ make about a dozen passes, each a separate operation).
// No libtorch here: the trainer hands over its tensors' memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace distill::student {

// Adds `others` (count arrays of `size` floats) into `sum` and returns the
// sum of squares of the result.
double add_and_sum_squares(float* sum, const float* const* others, std::size_t count, std::size_t size);

// The scale that clips a gradient of norm sqrt(sum_squares) to max_norm,
// as torch.nn.utils.clip_grad_norm_ computes it: min(1, max / (norm + 1e-6)).
double clip_scale(double sum_squares, double max_norm);

struct AdamWStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0;
  std::int64_t step = 1;   // 1 for the first update (bias corrections)
  double grad_scale = 1;   // applied to the gradient first (clipping)
};

// One AdamW update of `size` parameters, as torch.optim.AdamW defines it:
// decoupled weight decay, then the moments m and v, then the bias-corrected
// step.
void adamw_update(float* value, const float* grad, float* m, float* v, std::size_t size, const AdamWStep& step);

}  // namespace distill::student
