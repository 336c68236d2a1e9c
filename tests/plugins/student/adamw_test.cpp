// The fused optimiser loops (plugins/student/adamw.h) against the AdamW and
// clipping that torch.optim.AdamW and clip_grad_norm_ define, written out
// here in double, element by element, over several updates.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "adamw.h"
#include "random_values.h"

namespace {

using namespace distill::student;
using distill::student::testing::random_values;

// torch.optim.AdamW's single-tensor update, in double.
void reference_update(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m,
                      std::vector<double>& v, const AdamWStep& s) {
  const double correction1 = 1 - std::pow(s.beta1, static_cast<double>(s.step));
  const double correction2 = 1 - std::pow(s.beta2, static_cast<double>(s.step));
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double grad = g[i] * s.grad_scale;
    p[i] *= 1 - s.lr * s.weight_decay;
    m[i] = s.beta1 * m[i] + (1 - s.beta1) * grad;
    v[i] = s.beta2 * v[i] + (1 - s.beta2) * grad * grad;
    p[i] -= s.lr / correction1 * m[i] / (std::sqrt(v[i]) / std::sqrt(correction2) + s.eps);
  }
}

TEST(FusedAdamW, FollowsTorchsAdamWOverSeveralUpdates) {
  const std::size_t size = 1003;  // not a multiple of any vector width
  std::vector<float> p = random_values(size, 1, 0.02f), m(size, 0), v(size, 0);
  std::vector<double> p_ref(p.begin(), p.end()), m_ref(size, 0), v_ref(size, 0);
  for (std::int64_t step = 1; step <= 5; ++step) {
    const std::vector<float> g = random_values(size, 100 + static_cast<std::uint32_t>(step), 0.1f);
    AdamWStep s;
    s.lr = 3e-3 * static_cast<double>(step) / 5;
    s.weight_decay = 0.1;
    s.step = step;
    s.grad_scale = step % 2 ? 1.0 : 0.37;
    adamw_update(p.data(), g.data(), m.data(), v.data(), size, s);
    reference_update(p_ref, std::vector<double>(g.begin(), g.end()), m_ref, v_ref, s);
  }
  double moved = 0;
  const std::vector<float> start = random_values(size, 1, 0.02f);
  for (std::size_t i = 0; i < size; ++i) {
    ASSERT_NEAR(p[i], p_ref[i], 1e-6 + 1e-5 * std::abs(p_ref[i])) << "parameter " << i;
    ASSERT_NEAR(m[i], m_ref[i], 1e-6 + 1e-5 * std::abs(m_ref[i])) << "first moment " << i;
    ASSERT_NEAR(v[i], v_ref[i], 1e-9 + 1e-5 * std::abs(v_ref[i])) << "second moment " << i;
    moved = std::max(moved, static_cast<double>(std::abs(p[i] - start[i])));
  }
  EXPECT_GT(moved, 1e-3) << "the updates moved the parameters";
}

TEST(FusedAdamW, NoDecayLeavesAZeroGradientsParameterAlone) {
  std::vector<float> p = {0.5f, -2.0f, 0.0f}, g(3, 0.0f), m(3, 0.0f), v(3, 0.0f);
  AdamWStep s;
  s.lr = 0.1;
  adamw_update(p.data(), g.data(), m.data(), v.data(), p.size(), s);
  EXPECT_EQ(p, (std::vector<float>{0.5f, -2.0f, 0.0f}));
  s.weight_decay = 0.5;
  adamw_update(p.data(), g.data(), m.data(), v.data(), p.size(), s);
  EXPECT_FLOAT_EQ(p[0], 0.5f * 0.95f);
  EXPECT_FLOAT_EQ(p[1], -2.0f * 0.95f);
}

TEST(FusedAdamW, AddsShardsAndSumsTheirSquares) {
  for (std::size_t count : {0u, 1u, 3u}) {
    for (std::size_t size : {1u, 7u, 8u, 1001u}) {
      std::vector<std::vector<float>> shards;
      for (std::size_t k = 0; k <= count; ++k) shards.push_back(random_values(size, 7 + static_cast<std::uint32_t>(k), 1.0f));
      std::vector<double> expected(size, 0);
      for (const auto& shard : shards)
        for (std::size_t i = 0; i < size; ++i) expected[i] += shard[i];
      double expected_squares = 0;
      for (double x : expected) expected_squares += x * x;
      std::vector<const float*> others;
      for (std::size_t k = 1; k <= count; ++k) others.push_back(shards[k].data());
      std::vector<float> sum = shards[0];
      const double squares = add_and_sum_squares(sum.data(), others.data(), count, size);
      for (std::size_t i = 0; i < size; ++i) ASSERT_NEAR(sum[i], expected[i], 1e-5) << count << " shards, size " << size;
      EXPECT_NEAR(squares, expected_squares, 1e-5 * expected_squares) << count << " shards, size " << size;
    }
  }
}

TEST(FusedAdamW, ClipsAsClipGradNormDoes) {
  EXPECT_EQ(clip_scale(0.25, 1.0), 1.0);   // norm 0.5 is under 1
  EXPECT_NEAR(clip_scale(16.0, 1.0), 1.0 / (4.0 + 1e-6), 1e-15);
  EXPECT_NEAR(clip_scale(16.0, 2.0), 2.0 / (4.0 + 1e-6), 1e-15);
  EXPECT_EQ(clip_scale(0.0, 1.0), 1.0);
}

}  // namespace
