// The Llama tensor layout the exporters expect: names and shapes derived
// from a ModelShape, and the check that a trainer's tensors match it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "export.h"

namespace distill::student {

struct ExpectedTensor {
  std::string name;                  // Hugging Face name
  std::vector<std::int64_t> shape;   // row-major, outermost first
};

// Throws std::runtime_error when the shape is not a valid Llama shape.
void check_model_shape(const ModelShape& shape);

// Every tensor of the model in export order: embeddings, then each layer,
// then the final norm and (when untied) lm_head.
std::vector<ExpectedTensor> expected_tensors(const ModelShape& shape);

// The trainer's tensors in expected_tensors() order, after checking that
// they are exactly that set, with matching shapes, sizes and finite values.
std::vector<const NamedTensor*> checked_tensors(const ModelShape& shape, const std::vector<NamedTensor>& tensors);

std::string shape_string(const std::vector<std::int64_t>& shape);

}  // namespace distill::student
