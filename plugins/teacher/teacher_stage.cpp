// The teacher stage: sends each record's prompt to an OpenAI-compatible
// chat-completions endpoint and fills in the answer. Asynchronous: a batch
// hands its requests to the TeacherClient and returns; no worker thread
// waits on the network. Every usable response is stored in the shared
// "teacher_cache" the moment it arrives, keyed by what determines the
// answer (base URL, model, messages, sampling parameters, logprob and n
// settings), so a re-run, a resume after a crash or another pipeline over
// the same prompts pays nothing for it. A request that still fails after
// its retries drops the record as `teacher_<reason>` (not cached, so the
// next run asks again). With `mode: batch` the same requests go through the
// OpenAI Batch API instead (BatchCollector) and land in the same cache.
#include <distill/content_id.h>
#include <distill/plugin.h>

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "batch_collector.h"
#include "jsonl_formats.h"
#include "teacher_client.h"

namespace {

using namespace distill;
using nlohmann::json;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A YAML scalar as the JSON value it reads as (0.7 -> number, true -> bool), else a string.
json scalar_json(const std::string& text) {
  json value = json::parse(text, nullptr, false);
  return value.is_discarded() || value.is_object() || value.is_array() ? json(text) : value;
}

std::string hex(XXH128_hash_t hash) {
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64));
  return out;
}

// What a request came to: the response (fresh or cached) or why it failed.
struct Answer {
  bool ok = false;
  std::string body;
  std::string request_id;
  std::int64_t received_ms = 0;
  std::string batch_id;  // the Batch API batch that answered, if one did
  std::string reason;
  std::string message;
  int attempts = 0;
};

// The requests of one batch, shared by its callbacks until the last one ends.
struct BatchWork {
  std::vector<Answer> answers;  // by slot
  std::atomic<int> remaining{1};
  std::function<void()> done;

  void finish_one() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) done();
  }
};

// A slot of a batch that waits for an answer.
struct Waiter {
  std::shared_ptr<BatchWork> work;
  std::size_t index;
};

std::string encode_cached(const Answer& answer) {
  json cached = {{"body", answer.body}, {"request_id", answer.request_id}, {"received_ms", answer.received_ms}};
  if (!answer.batch_id.empty()) cached["batch_id"] = answer.batch_id;
  return cached.dump();
}

Answer decode_cached(const std::string& text) {
  const json j = json::parse(text);
  Answer answer;
  answer.ok = true;
  answer.body = j.at("body").get<std::string>();
  answer.request_id = j.at("request_id").get<std::string>();
  answer.received_ms = j.at("received_ms").get<std::int64_t>();
  answer.batch_id = j.value("batch_id", "");
  return answer;
}

class TeacherStage : public Stage {
 public:
  explicit TeacherStage(Context& ctx)
      : ctx_(ctx),
        base_url_(ctx.params().str("base_url")),
        model_(ctx.params().str("model")),
        terms_(ctx.params().str("terms")),
        top_k_(ctx.params().object("logprobs").integer("top_k")),
        n_(ctx.params().integer("n")),
        use_cache_(ctx.params().flag("cache")),
        batch_mode_(ctx.params().str("mode") == "batch"),
        price_input_(ctx.params().object("price_per_mtok").number("input")),
        price_output_(ctx.params().object("price_per_mtok").number("output")),
        batch_price_factor_(ctx.params().object("batch").number("price_factor")),
        cache_(ctx.shared("teacher_cache")),
        cache_hits_(ctx.counter("cache_hits")),
        answered_(ctx.counter("teacher_answers")),
        prompt_tokens_(ctx.counter("paid_prompt_tokens")),
        completion_tokens_(ctx.counter("paid_completion_tokens")),
        cost_(ctx.counter("paid_cost_micro_usd")),
        coalesced_(ctx.counter("joined_identical_request")),
        response_parser_(jsonl::Format::ChatCompletion),
        check_parser_(jsonl::Format::ChatCompletion) {
    for (const auto& [name, value] : ctx.params().value("params").object()) params_[name] = scalar_json(value.scalar());
    client_ = std::make_unique<teacher::TeacherClient>(
        client_options(ctx), teacher::ClientCounters{ctx.counter("requests_sent"), ctx.counter("retries")});
    if (batch_mode_) {
      start_batch_mode(ctx);
      ctx.log().info("teacher " + model_ + " at " + base_url_ + " through the Batch API");
    } else {
      ctx.log().info("teacher " + model_ + " at " + base_url_ + ", concurrency " +
                     std::to_string(ctx.params().integer("concurrency")));
    }
  }

  static void validate(const Params& params) {
    const std::string& url = params.str("base_url");
    if (!url.starts_with("http://") && !url.starts_with("https://"))
      throw ParamError("base_url", "base_url must start with http:// or https://, got '" + url + "'");
    const std::string& env = params.str("api_key_env");
    if (!env.empty() && !std::getenv(env.c_str()))
      throw ParamError("api_key_env", "environment variable " + env + " (the API key) is not set");
    for (const char* reserved : {"model", "messages", "n", "logprobs", "top_logprobs", "stream"})
      if (params.value("params").find(reserved))
        throw ParamError("params", std::string("'") + reserved + "' is set by the teacher stage itself, not in params");
    if (params.str("mode") == "batch" && !params.flag("cache"))
      throw ParamError("cache", "mode: batch keeps every answer in the teacher cache (a batch may finish after a "
                                "restart); cache: false works only with mode: online");
  }

  bool is_async() const override { return true; }

  void prepare_async(Batch& batch, std::function<void()> done) override {
    auto work = std::make_shared<BatchWork>();
    work->answers.resize(batch.slots.size());
    work->done = std::move(done);
    batch.scratch = work;
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      const Slot& slot = batch.slots[i];
      if (!slot.live()) continue;
      std::string body = request_body(slot.record).dump();
      const std::string identity = base_url_ + "\n" + body;
      const std::string cache_key = hex(XXH3_128bits(identity.data(), identity.size()));
      if (answer_from_cache(*work, i, cache_key)) continue;
      work->remaining.fetch_add(1, std::memory_order_relaxed);
      if (use_cache_) {  // always true in batch mode
        // The same request already on its way (same prompt twice in the
        // input): wait for its answer instead of paying for it again.
        std::lock_guard lock(in_flight_mutex_);
        if (answer_from_cache(*work, i, cache_key)) {
          work->remaining.fetch_sub(1, std::memory_order_relaxed);
          continue;
        }
        auto [waiters, first] = in_flight_.try_emplace(cache_key);
        waiters->second.push_back({work, i});
        if (!first) {
          ++coalesced_;
          continue;
        }
      }
      if (batch_mode_) {
        collector_->request(cache_key, std::move(body));
        continue;
      }
      const auto deliver = [this, cache_key, work, i](teacher::Outcome outcome) {
        if (use_cache_)
          on_outcome(cache_key, outcome, "");
        else
          deliver_to({{work, i}}, answer_of(cache_key, outcome, ""));
      };
      const double estimate = estimated_tokens(slot.record);
      client_->submit({std::move(body), estimate,
                       [this](const std::string& response) { return check(response); },
                       deliver});
    }
    work->finish_one();
  }

  void process(Batch& batch) override {
    auto work = std::any_cast<std::shared_ptr<BatchWork>>(batch.scratch);
    std::vector<Slot> out;
    out.reserve(batch.slots.size());
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      Slot& slot = batch.slots[i];
      const Answer& answer = work->answers[i];
      if (!slot.live()) {
        out.push_back(std::move(slot));
      } else if (answer.reason == teacher::kUnfinished) {
        throw std::runtime_error(answer.message);
      } else if (!answer.ok) {
        drop(slot, "teacher_" + answer.reason, answer.message, answer.attempts);
        out.push_back(std::move(slot));
      } else {
        answer_into(slot, answer, out);
      }
    }
    batch.slots = std::move(out);
  }

 private:
  // A stopping run does not wait for requests and their retries: they end
  // as "cancelled", and the engine commits nothing of the batches in flight.
  static teacher::ClientOptions client_options(Context& ctx) {
    const Params& p = ctx.params();
    teacher::ClientOptions o;
    o.cancelled = [&ctx] { return ctx.cancelled(); };
    std::string base = p.str("base_url");
    while (base.ends_with("/")) base.pop_back();
    o.url = base + "/chat/completions";
    const std::string& env = p.str("api_key_env");
    if (!env.empty()) {
      const char* key = std::getenv(env.c_str());
      if (!key) throw ParamError("api_key_env", "environment variable " + env + " (the API key) is not set");
      o.api_key = key;
    }
    o.concurrency = static_cast<int>(p.integer("concurrency"));
    const Params limits = p.object("limits");
    o.requests_per_minute = limits.number("requests_per_minute");
    o.input_tokens_per_minute = limits.number("input_tokens_per_minute");
    o.output_tokens_per_minute = limits.number("output_tokens_per_minute");
    const Params retries = p.object("retries");
    o.max_retries = static_cast<int>(retries.integer("max"));
    o.backoff_base_ms = static_cast<int>(retries.integer("base_ms"));
    o.backoff_max_ms = static_cast<int>(retries.integer("max_ms"));
    o.timeout_ms = static_cast<int>(p.number("timeout_s") * 1000);
    return o;
  }

  void start_batch_mode(Context& ctx) {
    const Params& p = ctx.params();
    const Params batch = p.object("batch");
    teacher::BatchSettings settings;
    settings.max_requests = static_cast<std::size_t>(batch.integer("max_requests"));
    settings.max_file_bytes = static_cast<std::size_t>(batch.number("max_file_mb") * 1e6);
    settings.max_batches = static_cast<std::size_t>(batch.integer("max_batches"));
    settings.completion_window = batch.str("completion_window");
    settings.poll = std::chrono::milliseconds(static_cast<std::int64_t>(batch.number("poll_s") * 1000));
    settings.max_attempts = static_cast<int>(p.object("retries").integer("max")) + 1;
    settings.pipeline = ctx.run().pipeline;
    settings.step = ctx.run().instance;
    settings.run = ctx.run().run;
    const teacher::ClientOptions online = client_options(ctx);
    teacher::BatchApiOptions api;
    api.base_url = base_url_;
    api.api_key = online.api_key;
    api.max_retries = online.max_retries;
    api.backoff_base_ms = online.backoff_base_ms;
    api.backoff_max_ms = online.backoff_max_ms;
    api.timeout_ms = online.timeout_ms;
    api.stopping = [&ctx] { return ctx.cancelled(); };
    teacher::BatchHooks hooks;
    hooks.check = [this](const std::string& response) { return check_batch_answer(response); };
    hooks.cached = [this](const std::string& cache_key) { return cache_.get(cache_key).has_value(); };
    hooks.done = [this](const std::string& cache_key, teacher::Outcome outcome, const std::string& batch_id) {
      on_outcome(cache_key, outcome, batch_id);
    };
    hooks.cancelled = [&ctx] { return ctx.cancelled(); };
    online_cost_ = &ctx.counter("online_cost_micro_usd");
    collector_ = std::make_unique<teacher::BatchCollector>(
        std::move(settings), std::make_unique<teacher::BatchApi>(std::move(api)), ctx.shared("teacher_batches"), ctx,
        std::move(hooks),
        teacher::BatchCounters{ctx.counter("batches_created"), ctx.counter("batch_lines_submitted"),
                               ctx.counter("batch_lines_retried"), ctx.counter("batch_lines_resubmitted"),
                               ctx.counter("batch_results_ignored")});
  }

  // The request for a record; its JSON text (keys sorted) is also the cache key.
  json request_body(const Record& record) const {
    json body = json::object();
    for (const auto& [name, value] : params_) body[name] = value;
    for (const auto& [name, text] : record.teacher.params) body[name] = json::parse(text, nullptr, false);
    body["model"] = model_;
    json messages = json::array();
    for (const Message& m : record.prompt) messages.push_back({{"role", m.role}, {"content", m.content}});
    body["messages"] = std::move(messages);
    if (n_ > 1) body["n"] = n_;
    if (top_k_ > 0) {
      body["logprobs"] = true;
      body["top_logprobs"] = top_k_;
    }
    return body;
  }

  static double estimated_tokens(const Record& record) {
    double tokens = 3;
    for (const Message& m : record.prompt) tokens += 4 + static_cast<double>(m.content.size()) / 4;
    return tokens;
  }

  // On the client's thread: is this 200 body a usable answer, and what did it cost?
  std::optional<teacher::TokenUsage> check(const std::string& response) {
    jsonl::LineResult parsed = check_parser_.parse(response);
    if (!parsed.ok() || parsed.records.empty()) return std::nullopt;
    const Usage& usage = parsed.records.front().teacher.usage;
    return teacher::TokenUsage{static_cast<double>(usage.prompt_tokens), static_cast<double>(usage.completion_tokens)};
  }

  // The same check on the batch collector's thread, with a parser of its own.
  std::optional<teacher::TokenUsage> check_batch_answer(const std::string& response) {
    jsonl::LineResult parsed = batch_check_parser_.parse(response);
    if (!parsed.ok() || parsed.records.empty()) return std::nullopt;
    const Usage& usage = parsed.records.front().teacher.usage;
    return teacher::TokenUsage{static_cast<double>(usage.prompt_tokens), static_cast<double>(usage.completion_tokens)};
  }

  bool answer_from_cache(BatchWork& work, std::size_t index, const std::string& cache_key) {
    if (!use_cache_) return false;
    std::optional<std::string> cached = cache_.get(cache_key);
    if (!cached) return false;
    work.answers[index] = decode_cached(*cached);
    ++cache_hits_;
    return true;
  }

  // On the client's (or the batch collector's) thread: store a fresh
  // answer at once (before anyone can miss it in both the cache and the
  // in-flight map), then release every slot that waits for it. A batch
  // re-attached after a restart may answer a prompt no record waits for yet.
  void on_outcome(const std::string& cache_key, teacher::Outcome& outcome, const std::string& batch_id) {
    const Answer answer = answer_of(cache_key, outcome, batch_id);
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(in_flight_mutex_);
      auto it = in_flight_.find(cache_key);
      if (it == in_flight_.end()) return;
      waiters = std::move(it->second);
      in_flight_.erase(it);
    }
    deliver_to(waiters, answer);
  }

  static void deliver_to(const std::vector<Waiter>& waiters, const Answer& answer) {
    for (const Waiter& waiter : waiters) {
      waiter.work->answers[waiter.index] = answer;
      waiter.work->finish_one();
    }
  }

  // On the client's thread: the answer, stored in the cache at once when
  // it is one. A batch answer costs the batch price; online_cost_micro_usd
  // says what it would have cost online.
  Answer answer_of(const std::string& cache_key, teacher::Outcome& outcome, const std::string& batch_id) {
    Answer answer;
    answer.ok = outcome.ok;
    answer.attempts = outcome.attempts;
    if (outcome.ok) {
      answer.body = std::move(outcome.body);
      answer.request_id = std::move(outcome.request_id);
      answer.batch_id = batch_id;
      answer.received_ms = now_ms();
      ++answered_;
      prompt_tokens_ += static_cast<std::int64_t>(outcome.usage.prompt_tokens);
      completion_tokens_ += static_cast<std::int64_t>(outcome.usage.completion_tokens);
      const double online_cost =
          outcome.usage.prompt_tokens * price_input_ + outcome.usage.completion_tokens * price_output_;
      cost_ += static_cast<std::int64_t>(batch_id.empty() ? online_cost : online_cost * batch_price_factor_);
      if (online_cost_) *online_cost_ += static_cast<std::int64_t>(online_cost);
      if (use_cache_) {
        try {
          cache_.put(cache_key, encode_cached(answer));
        } catch (const std::exception& e) {
          ctx_.log().warn(std::string("cannot store a teacher response in the cache: ") + e.what());
        }
      }
    } else {
      answer.reason = std::move(outcome.reason);
      answer.message = std::move(outcome.message);
    }
    return answer;
  }

  // Serial: one record per choice of the answer, in choice order.
  void answer_into(Slot& slot, const Answer& answer, std::vector<Slot>& out) {
    jsonl::LineResult parsed = response_parser_.parse(answer.body);
    if (!parsed.ok() || parsed.records.empty()) {
      drop(slot, "teacher_bad_response", parsed.dead_detail, answer.attempts);
      out.push_back(std::move(slot));
      return;
    }
    for (Record& choice : parsed.records) {
      Slot& filled = out.emplace_back();
      filled.record = slot.record;
      Record& r = filled.record;
      r.response = std::move(choice.response);
      r.reasoning = std::move(choice.reasoning);
      r.logprobs = std::move(choice.logprobs);
      r.teacher.model = choice.teacher.model.empty() ? model_ : choice.teacher.model;
      r.teacher.endpoint = base_url_;
      r.teacher.response_id = std::move(choice.teacher.response_id);
      r.teacher.finish_reason = std::move(choice.teacher.finish_reason);
      r.teacher.usage = choice.teacher.usage;
      for (const auto& [name, value] : params_) r.teacher.params.emplace(name, value.dump());
      if (r.teacher.model != model_) r.annotations["requested_model"] = model_;
      if (auto index = choice.annotations.find("choice"); index != choice.annotations.end())
        r.annotations["choice"] = index->second;
      if (!r.provenance.request_id.empty()) r.annotations["prompt_id"] = r.provenance.request_id;
      r.provenance.request_id = answer.request_id;
      if (!answer.batch_id.empty()) r.annotations["teacher_batch_id"] = answer.batch_id;
      r.provenance.collected_at_ms = answer.received_ms;
      if (!terms_.empty()) r.provenance.terms = terms_;
      r.id = content_id(r);
    }
  }

  static void drop(Slot& slot, std::string reason, const std::string& message, int attempts) {
    slot.drop_reason = std::move(reason);
    slot.record.annotations["error"] = message;
    slot.record.annotations["attempts"] = static_cast<double>(attempts);
  }

  Context& ctx_;
  std::string base_url_;
  std::string model_;
  std::string terms_;
  std::int64_t top_k_;
  std::int64_t n_;
  bool use_cache_;
  bool batch_mode_;
  double price_input_;
  double price_output_;
  double batch_price_factor_;
  std::atomic<std::int64_t>* online_cost_ = nullptr;  // batch mode only
  std::map<std::string, json> params_;
  KeyValue& cache_;
  std::atomic<std::int64_t>& cache_hits_;
  std::atomic<std::int64_t>& answered_;
  std::atomic<std::int64_t>& prompt_tokens_;
  std::atomic<std::int64_t>& completion_tokens_;
  std::atomic<std::int64_t>& cost_;
  std::atomic<std::int64_t>& coalesced_;
  std::mutex in_flight_mutex_;
  std::unordered_map<std::string, std::vector<Waiter>> in_flight_;  // cache key -> slots waiting for it
  jsonl::LineParser response_parser_;  // serial part only
  jsonl::LineParser check_parser_;     // client thread only
  jsonl::LineParser batch_check_parser_{jsonl::Format::ChatCompletion};  // batch collector thread only
  std::unique_ptr<teacher::TeacherClient> client_;
  std::unique_ptr<teacher::BatchCollector> collector_;  // batch mode; declared last, so stopped first
};

std::vector<ParamSpec> teacher_params() {
  return {
      param::String("base_url", "OpenAI-compatible API root, e.g. http://127.0.0.1:8089/v1").is_required(),
      param::String("model", "model name to request").is_required(),
      param::String("api_key_env", "environment variable holding the API key (never logged or stored)")
          .default_value("\"\""),
      param::String("terms", "terms/licence tag stamped into every record (empty: keep the source's)")
          .default_value("\"\""),
      param::Map("params", "sampling parameters sent with every request (temperature, max_tokens, ...)")
          .default_value("{}"),
      param::Object("logprobs", "teacher top-k logprobs",
                    {param::Int("top_k", "alternatives per token (0: no logprobs)").default_value("0").min(0).max(20)}),
      param::Int("n", "answers per prompt, each a record").default_value("1").min(1).max(16),
      param::Int("concurrency", "requests in flight at most").default_value("64").min(1).max(4096),
      param::Object("limits", "per-minute limits (0: none)",
                    {param::Double("requests_per_minute", "requests").default_value("0").min(0),
                     param::Double("input_tokens_per_minute", "prompt tokens (estimated, then corrected)")
                         .default_value("0").min(0),
                     param::Double("output_tokens_per_minute", "completion tokens").default_value("0").min(0)}),
      param::Object("retries", "retries of 429, 5xx, timeouts, connection errors and unusable bodies",
                    {param::Int("max", "retries after the first attempt").default_value("8").min(0).max(100),
                     param::Int("base_ms", "first backoff (doubles each retry, with jitter)").default_value("500").min(1),
                     param::Int("max_ms", "longest backoff").default_value("60000").min(1)}),
      param::Double("timeout_s", "per request").default_value("120").min(0.1),
      param::Object("price_per_mtok", "USD per million tokens, for the cost counter",
                    {param::Double("input", "prompt tokens").default_value("0").min(0),
                     param::Double("output", "completion tokens").default_value("0").min(0)}),
      param::Bool("cache", "reuse and store responses in the shared teacher cache").default_value("true"),
      param::Choice("mode", "online: one request per prompt; batch: through the OpenAI Batch API (half price, within "
                            "the completion window)",
                    {"online", "batch"})
          .default_value("online"),
      param::Object(
          "batch", "mode: batch settings",
          {param::Int("max_requests", "lines per batch input file").default_value("50000").min(1).max(50000),
           param::Double("max_file_mb", "MB (10^6 bytes) per batch input file").default_value("190").min(0.001).max(200),
           param::String("completion_window", "how long the provider may take").default_value("24h"),
           param::Double("poll_s", "seconds between two looks at a batch's status").default_value("60").min(0.05),
           param::Int("max_batches", "batches in flight at once").default_value("100").min(1).max(10000),
           param::Double("price_factor", "batch price as a share of price_per_mtok").default_value("0.5").min(0)}),
  };
}

}  // namespace

DISTILL_PLUGIN("teacher", "asks an OpenAI-compatible teacher for each prompt's answer (cached, rate-limited, retried)",
               distill::stage<TeacherStage>(teacher_params()))
