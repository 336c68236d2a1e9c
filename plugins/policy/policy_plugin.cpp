// policy: the declarative filter stage. Every rule runs in the parallel
// part (prepare), which also redacts and annotates each record; the serial
// part only applies the verdicts and adds the batch's counts to the
// counters (rule:<name>, redacted_<kind> or, in audit mode,
// would_redact_<kind>), so the output is the same at any thread count.
#include <distill/plugin.h>

#include "policy.h"
#include "policy_params.h"

namespace {

using namespace distill;
using policy::Outcome;
using policy::Policy;

class PolicyStage : public Stage {
 public:
  explicit PolicyStage(Context& ctx) : ctx_(ctx), policy_(ctx.params()) {}

  // Compiles the block (every pattern, phrase, language code, rule name).
  static void validate(const Params& params) { Policy{params}; }

  unsigned prepare_parallelism() const override { return 64; }

  void prepare(Batch& batch) override {
    std::vector<Outcome> outcomes(batch.slots.size());
    for (std::size_t i = 0; i < batch.slots.size(); ++i)
      if (batch.slots[i].live()) outcomes[i] = policy_.apply(batch.slots[i].record);
    batch.scratch = std::move(outcomes);
  }

  void process(Batch& batch) override {
    const auto& outcomes = std::any_cast<const std::vector<Outcome>&>(batch.scratch);
    const bool enforce = policy_.mode() == policy::Mode::enforce;
    std::vector<std::int64_t> hits(policy_.rule_names().size(), 0);
    policy::PiiCounts redacted{};
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      Slot& slot = batch.slots[i];
      if (!slot.live()) continue;
      const Outcome& outcome = outcomes[i];
      for (std::size_t rule : outcome.failed) ++hits[rule];
      for (std::size_t k = 0; k < redacted.size(); ++k) redacted[k] += outcome.redacted[k];
      if (enforce && !outcome.failed.empty()) slot.drop_reason = policy_.rule_names()[outcome.failed.front()];
    }
    for (std::size_t rule = 0; rule < hits.size(); ++rule)
      if (hits[rule] > 0) ctx_.counter("rule:" + policy_.rule_names()[rule]) += hits[rule];
    const std::string prefix = enforce ? "redacted_" : "would_redact_";
    for (std::size_t k = 0; k < redacted.size(); ++k)
      if (redacted[k] > 0) ctx_.counter(prefix + std::string(policy::pii_name(policy::kPiiKinds[k]))) += redacted[k];
  }

 private:
  Context& ctx_;
  Policy policy_;
};

}  // namespace

DISTILL_PLUGIN("policy", "declarative filter: one named rule per drop reason, PII redaction, audit mode",
               distill::stage<PolicyStage>(distill::policy::policy_params()))
