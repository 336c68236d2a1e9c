// The fused element-wise layers (plugins/student/kernels.h): each forward
// pass against its definition written out in double, and each backward
// pass against central differences of that definition (the gradient of
// sum(dy * y) for a random dy), so the hand-derived gradients are checked
// by something that does not share their derivation.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels.h"
#include "random_values.h"

namespace {

using namespace distill::student;
using distill::student::testing::random_values;

std::vector<double> widened(const std::vector<float>& values) { return {values.begin(), values.end()}; }

// d/dinput[i] of sum(dy * f(input)), by central differences in double.
std::vector<double> numeric_gradient(const std::function<std::vector<double>(const std::vector<double>&)>& f,
                                     std::vector<double> input, const std::vector<float>& dy) {
  std::vector<double> gradient(input.size());
  const double h = 1e-5;
  auto weighted = [&](const std::vector<double>& in) {
    const std::vector<double> out = f(in);
    double sum = 0;
    for (std::size_t i = 0; i < out.size(); ++i) sum += dy[i] * out[i];
    return sum;
  };
  for (std::size_t i = 0; i < input.size(); ++i) {
    const double saved = input[i];
    input[i] = saved + h;
    const double up = weighted(input);
    input[i] = saved - h;
    const double down = weighted(input);
    input[i] = saved;
    gradient[i] = (up - down) / (2 * h);
  }
  return gradient;
}

void expect_close(const std::vector<float>& actual, const std::vector<double>& expected, double tolerance,
                  const char* what) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i)
    ASSERT_NEAR(actual[i], expected[i], tolerance * (1.0 + std::abs(expected[i]))) << what << " at " << i;
}

constexpr std::size_t kRows = 5, kWidth = 24;
constexpr float kEps = 1e-5f;

std::vector<double> rms_norm_reference(const std::vector<double>& x, const std::vector<double>& w) {
  std::vector<double> y(x.size());
  for (std::size_t r = 0; r < kRows; ++r) {
    double squares = 0;
    for (std::size_t i = 0; i < kWidth; ++i) squares += x[r * kWidth + i] * x[r * kWidth + i];
    const double scale = 1.0 / std::sqrt(squares / kWidth + kEps);
    for (std::size_t i = 0; i < kWidth; ++i) y[r * kWidth + i] = x[r * kWidth + i] * scale * w[i];
  }
  return y;
}

TEST(Kernels, RmsNormMatchesItsDefinitionAndItsGradientsTheNumericOnes) {
  const std::vector<float> x = random_values(kRows * kWidth, 1, 2.0f), w = random_values(kWidth, 2),
                           dy = random_values(kRows * kWidth, 3);
  std::vector<float> y(x.size()), inv_rms(kRows);
  rms_norm_forward(x.data(), w.data(), kRows, kWidth, kEps, y.data(), inv_rms.data());
  expect_close(y, rms_norm_reference(widened(x), widened(w)), 1e-5, "y");

  std::vector<float> dx(x.size()), dw(kWidth, 0.5f);  // dw is added to
  rms_norm_backward(dy.data(), x.data(), w.data(), inv_rms.data(), kRows, kWidth, dx.data(), dw.data());
  expect_close(dx, numeric_gradient([&](const std::vector<double>& in) { return rms_norm_reference(in, widened(w)); },
                                    widened(x), dy),
               1e-4, "dx");
  std::vector<double> expected_dw = numeric_gradient(
      [&](const std::vector<double>& in) { return rms_norm_reference(widened(x), in); }, widened(w), dy);
  for (double& g : expected_dw) g += 0.5;
  expect_close(dw, expected_dw, 1e-4, "dw");
}

constexpr RopeShape kRope{2, 3, 4, 8};  // batch, length, heads, dim

// x [B, T, H, D] -> y [B, H, T, D], rotated by position and scaled.
std::vector<double> rope_reference(const std::vector<double>& x, const std::vector<float>& cos,
                                   const std::vector<float>& sin, double scale) {
  const std::size_t half = kRope.dim / 2;
  std::vector<double> y(x.size());
  for (std::size_t b = 0; b < kRope.batch; ++b)
    for (std::size_t t = 0; t < kRope.length; ++t)
      for (std::size_t h = 0; h < kRope.heads; ++h)
        for (std::size_t i = 0; i < kRope.dim; ++i) {
          auto in = [&](std::size_t j) { return x[((b * kRope.length + t) * kRope.heads + h) * kRope.dim + j]; };
          const double rotated = i < half ? -in(i + half) : in(i - half);
          y[((b * kRope.heads + h) * kRope.length + t) * kRope.dim + i] =
              scale * (in(i) * cos[t * kRope.dim + i] + rotated * sin[t * kRope.dim + i]);
        }
  return y;
}

TEST(Kernels, RopeMatchesItsDefinitionAndItsGradientTheNumericOne) {
  const std::size_t size = kRope.batch * kRope.length * kRope.heads * kRope.dim;
  const std::vector<float> x = random_values(size, 4), dy = random_values(size, 5);
  // Angles as the model makes them: each frequency twice, position by position.
  std::vector<float> cos(kRope.length * kRope.dim), sin(cos.size());
  for (std::size_t t = 0; t < kRope.length; ++t)
    for (std::size_t i = 0; i < kRope.dim; ++i) {
      const double angle = static_cast<double>(t + 2) * std::pow(10000.0, -2.0 * (i % (kRope.dim / 2)) / kRope.dim);
      cos[t * kRope.dim + i] = static_cast<float>(std::cos(angle));
      sin[t * kRope.dim + i] = static_cast<float>(std::sin(angle));
    }
  const float scale = 0.35f;
  std::vector<float> y(size), dx(size);
  rope_forward(x.data(), cos.data(), sin.data(), kRope, scale, y.data());
  expect_close(y, rope_reference(widened(x), cos, sin, scale), 1e-6, "y");
  rope_backward(dy.data(), cos.data(), sin.data(), kRope, scale, dx.data());
  expect_close(dx,
               numeric_gradient([&](const std::vector<double>& in) { return rope_reference(in, cos, sin, scale); },
                                widened(x), dy),
               1e-5, "dx");
}

std::vector<double> swiglu_reference(const std::vector<double>& gate, const std::vector<double>& up) {
  std::vector<double> out(gate.size());
  for (std::size_t i = 0; i < gate.size(); ++i) out[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
  return out;
}

TEST(Kernels, SwiGluMatchesItsDefinitionAndItsGradientsTheNumericOnes) {
  const std::size_t count = 37;  // not a multiple of any vector width
  const std::vector<float> gate = random_values(count, 6, 3.0f), up = random_values(count, 7),
                           dout = random_values(count, 8);
  std::vector<float> out(count), dgate(count), dup(count);
  swiglu_forward(gate.data(), up.data(), count, out.data());
  expect_close(out, swiglu_reference(widened(gate), widened(up)), 1e-5, "out");
  swiglu_backward(dout.data(), gate.data(), up.data(), count, dgate.data(), dup.data());
  expect_close(dgate,
               numeric_gradient([&](const std::vector<double>& in) { return swiglu_reference(in, widened(up)); },
                                widened(gate), dout),
               1e-4, "dgate");
  expect_close(dup,
               numeric_gradient([&](const std::vector<double>& in) { return swiglu_reference(widened(gate), in); },
                                widened(up), dout),
               1e-4, "dup");
}

}  // namespace
