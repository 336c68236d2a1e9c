// exact_dedupe: drops a record whose normalised prompt+response (or
// response) was seen before, in this run or any earlier run of the
// pipeline. Hashing runs in the parallel part; the index (128-bit hash ->
// id of the first record) lives in the instance's checkpointed state and
// is consulted in source order, so the first occurrence is the one kept.
#include <distill/plugin.h>

#include <xxhash.h>

#include "text_normalize.h"

namespace {

using namespace distill;

class ExactDedupe : public Stage {
 public:
  explicit ExactDedupe(Context& ctx)
      : state_(ctx.state()),
        response_only_(ctx.params().str("key") == "response"),
        options_(text::normalize_options(ctx.params().strings("normalize"))) {}

  unsigned prepare_parallelism() const override { return 64; }

  void prepare(Batch& batch) override {
    std::vector<XXH128_hash_t> hashes(batch.slots.size());
    for (std::size_t i = 0; i < batch.slots.size(); ++i)
      if (batch.slots[i].live()) hashes[i] = hash(batch.slots[i].record);
    batch.scratch = std::move(hashes);
  }

  void process(Batch& batch) override {
    const auto& hashes = std::any_cast<const std::vector<XXH128_hash_t>&>(batch.scratch);
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      Slot& slot = batch.slots[i];
      if (!slot.live()) continue;
      XXH128_canonical_t canonical;
      XXH128_canonicalFromHash(&canonical, hashes[i]);
      const std::string key(reinterpret_cast<const char*>(canonical.digest), sizeof canonical.digest);
      if (std::optional<std::string> first = state_.get(key)) {
        slot.drop_reason = "duplicate";
        slot.record.annotations["duplicate_of"] = *first;
      } else {
        state_.put(key, slot.record.id);
      }
    }
  }

 private:
  XXH128_hash_t hash(const Record& record) const {
    std::string key;
    if (!response_only_)
      for (const Message& m : record.prompt) {
        key += m.role;
        key += '\x1f';
        key += text::normalize(m.content, options_);
        key += '\x1e';
      }
    key += text::normalize(record.response, options_);
    return XXH3_128bits(key.data(), key.size());
  }

  KeyValue& state_;
  bool response_only_;
  text::NormalizeOptions options_;
};

}  // namespace

DISTILL_PLUGIN("exact_dedupe", "drops exact duplicates after normalisation, across runs",
               distill::stage<ExactDedupe>({
                   distill::param::Choice("key", "what must match", {"prompt+response", "response"})
                       .default_value("prompt+response"),
                   distill::text::normalize_param(),
               }))
