// float -> binary16 bits (see f16.h). Works on the float's bit pattern:
// binary32 has an 8-bit exponent (bias 127) and 23 stored mantissa bits;
// binary16 has 5 (bias 15) and 10.
#include "f16.h"

#include <bit>

namespace distill::student {
namespace {

constexpr std::uint32_t kF32Inf = 0x7f800000;
constexpr std::uint32_t kF16Inf = 0x7c00;
// 65520 = the midpoint between the largest half (65504) and 2^16: from it
// on, rounding to nearest even gives infinity.
constexpr std::uint32_t kOverflow = 0x477ff000;
constexpr std::uint32_t kSmallestNormal = 0x38800000;  // 2^-14
constexpr std::uint32_t kRebias = (127u - 15u) << 23;

// |value| < 2^-14: a half subnormal counts units of 2^-24.
std::uint32_t subnormal(std::uint32_t abs) {
  const int exponent = static_cast<int>(abs >> 23);
  const int shift = 126 - exponent;  // value / 2^-24 = mantissa * 2^-shift
  if (shift > 24) return 0;          // below 2^-25: rounds to zero
  const std::uint32_t mantissa = (abs & 0x7fffff) | 0x800000;
  std::uint32_t units = mantissa >> shift;
  const std::uint32_t rest = mantissa & ((1u << shift) - 1);
  const std::uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (units & 1))) ++units;  // may carry into the smallest normal: still right
  return units;
}

}  // namespace

std::uint16_t f32_to_f16(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000;
  const std::uint32_t abs = bits & 0x7fffffff;
  if (abs > kF32Inf) return static_cast<std::uint16_t>(sign | kF16Inf | 0x200 | ((abs >> 13) & 0x3ff));
  if (abs >= kOverflow) return static_cast<std::uint16_t>(sign | kF16Inf);
  if (abs < kSmallestNormal) return static_cast<std::uint16_t>(sign | subnormal(abs));
  const std::uint32_t rebiased = abs - kRebias;
  const std::uint32_t rounded = (rebiased + 0xfff + ((rebiased >> 13) & 1)) >> 13;
  return static_cast<std::uint16_t>(sign | rounded);
}

void f32_to_f16(std::span<const float> in, std::uint16_t* out) {
  for (std::size_t i = 0; i < in.size(); ++i) out[i] = f32_to_f16(in[i]);
}

}  // namespace distill::student
