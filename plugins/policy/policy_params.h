// The policy plugin's declared parameters: one table that drives YAML
// validation, `distilld plugins` and the README. Rules whose items are
// user-named (patterns, annotations) are declared `any` and checked by
// Policy's constructor.
#pragma once

#include <distill/params.h>

#include <vector>

namespace distill::policy {

std::vector<ParamSpec> policy_params();

}  // namespace distill::policy
