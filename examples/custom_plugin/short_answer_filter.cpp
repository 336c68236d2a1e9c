// short_answer_filter: the hello-world plugin, built out of tree against
// the installed SDK only. Drops responses shorter than min_chars.
#include <distill/plugin.h>

class ShortAnswerFilter : public distill::Stage {
 public:
  explicit ShortAnswerFilter(distill::Context& ctx) : min_chars_(ctx.params().integer("min_chars")) {}

  distill::Verdict process(distill::Record& record) override {
    if (static_cast<std::int64_t>(record.response.size()) < min_chars_) return distill::Verdict::drop("too_short");
    return distill::Verdict::keep();
  }

 private:
  std::int64_t min_chars_;
};

DISTILL_PLUGIN("short_answer_filter", "drops responses shorter than min_chars",
               distill::stage<ShortAnswerFilter>(
                   {distill::param::Int("min_chars", "shortest response kept").default_value("20").min(0)}))
