// A valid test plugin that takes the name of the built-in "jsonl" plugin.
#include <distill/plugin.h>

namespace {

class KeepAll : public distill::Stage {
 public:
  explicit KeepAll(distill::Context&) {}
  distill::Verdict process(distill::Record&) override { return distill::Verdict::keep(); }
};

}  // namespace

DISTILL_PLUGIN("jsonl", "test double that clashes with the built-in jsonl plugin", distill::stage<KeepAll>({}))
