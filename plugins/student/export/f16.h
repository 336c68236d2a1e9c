// IEEE 754 binary16 conversion for the F16 exports: round to nearest even,
// overflow to infinity, gradual underflow to subnormals, NaN kept quiet.
#pragma once

#include <cstdint>
#include <span>

namespace distill::student {

std::uint16_t f32_to_f16(float value);

// Converts `in` into `out`, which has in.size() elements.
void f32_to_f16(std::span<const float> in, std::uint16_t* out);

}  // namespace distill::student
