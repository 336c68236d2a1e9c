// Seeded normal random floats for the student's numeric tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace distill::student::testing {

inline std::vector<float> random_values(std::size_t size, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(size);
  for (float& x : values) x = normal(rng);
  return values;
}

}  // namespace distill::student::testing
