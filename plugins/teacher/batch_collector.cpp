// The batch-mode collector's thread: gathers lines into input files,
// records, uploads and creates batches, polls them, joins their results by
// custom_id, and keeps the durable record of it all (see batch_collector.h).
#include "batch_collector.h"

#include <algorithm>
#include <ctime>
#include <random>
#include <sstream>

namespace distill::teacher {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kCustomIdPrefix = "dl-";
constexpr const char* kBatchTable = "batches";

const std::vector<std::string>& batch_columns() {
  static const std::vector<std::string> columns = {"batch",  "state",   "completed",  "failed",
                                                   "total", "created", "expected by"};
  return columns;
}

// "24h" -> 86400 (units s, m, h, d); nullopt for anything else.
std::optional<std::int64_t> window_seconds(const std::string& window) {
  std::size_t used = 0;
  std::int64_t count = 0;
  try {
    count = std::stoll(window, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (count < 0 || used + 1 != window.size()) return std::nullopt;
  switch (window.back()) {
    case 's': return count;
    case 'm': return count * 60;
    case 'h': return count * 3600;
    case 'd': return count * 86400;
  }
  return std::nullopt;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string utc(const json& seconds) {
  if (!seconds.is_number()) return "-";
  const std::time_t t = seconds.get<std::time_t>();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

std::string text_of(const json& object, const char* name) {
  return object.is_object() && object.contains(name) && object[name].is_string() ? object[name].get<std::string>()
                                                                                  : std::string();
}

std::int64_t integer_of(const json& object, const char* name) {
  return object.is_object() && object.contains(name) && object[name].is_number_integer()
             ? object[name].get<std::int64_t>()
             : 0;
}

const json& member(const json& object, const char* name) {
  static const json none;
  return object.is_object() && object.contains(name) ? object[name] : none;
}

bool ended(const std::string& status) {
  return status == "completed" || status == "failed" || status == "expired" || status == "cancelled";
}

Outcome failure(std::string reason, std::string message, int attempts) {
  Outcome outcome;
  outcome.reason = "batch_" + std::move(reason);
  outcome.message = std::move(message);
  outcome.attempts = attempts;
  return outcome;
}

Outcome unfinished(std::string reason, std::string message, int attempts) {
  Outcome outcome;
  outcome.reason = std::move(reason);
  outcome.message = std::move(message);
  outcome.attempts = attempts;
  return outcome;
}

// How one line of a batch ended.
struct LineEnd {
  enum Kind { answered, failed, resubmit } kind = failed;
  Outcome outcome;
};

}  // namespace

BatchCollector::BatchCollector(BatchSettings settings, std::unique_ptr<BatchApi> api, KeyValue& durable,
                               Context& ctx, BatchHooks hooks, BatchCounters counters)
    : settings_(std::move(settings)),
      api_(std::move(api)),
      durable_(durable),
      ctx_(ctx),
      hooks_(std::move(hooks)),
      counters_(counters),
      prefix_(settings_.pipeline + '\0' + settings_.step + '\0'),
      window_s_(window_seconds(settings_.completion_window)) {
  // A resumed run's table as its checkpoint left it: the batches that ended before.
  for (const StepStats& step : ctx_.stats())
    for (const Table& table : step.tables)
      if (step.step == settings_.step && table.name == kBatchTable && table.columns == batch_columns())
        rows_ = table.rows;
  reattach();  // before any request(), so no recorded line is submitted again
  thread_ = std::thread([this] { loop(); });
}

BatchCollector::~BatchCollector() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::string BatchCollector::key(std::string_view kind, std::string_view id) const {
  std::string out = prefix_;
  out.append(kind).push_back('\0');
  out.append(id);
  return out;
}

void BatchCollector::put_submission(const Submission& s) {
  const json record = {{"state", s.state},       {"file_id", s.file_id}, {"batch_id", s.batch_id},
                       {"recorded_ms", s.recorded_ms}, {"keys", s.keys},       {"attempts", s.attempts}};
  durable_.put(key("sub", s.id), record.dump());
}

json BatchCollector::line_record(const std::string& cache_key) {
  const std::optional<std::string> text = durable_.get(key("line", cache_key));
  if (!text) return nullptr;
  json record = json::parse(*text, nullptr, false);
  return record.is_object() ? record : json(nullptr);
}

// One line of a Batch API input file: the online request body as it is.
std::string BatchCollector::request_line(const std::string& cache_key, const std::string& body) const {
  return R"({"custom_id":")" + std::string(kCustomIdPrefix) + cache_key +
         R"(","method":"POST","url":"/v1/chat/completions","body":)" + body + "}\n";
}

void BatchCollector::request(const std::string& cache_key, std::string body) {
  Deliveries now;
  {
    std::lock_guard lock(mutex_);
    if (halted_) {
      now.push_back({cache_key, unfinished(halt_reason_, halt_message_, 0)});
    } else if (hooks_.cached(cache_key)) {
      return;  // answered by a batch a moment ago; its waiter has been served
    } else {
      const json line = line_record(cache_key);
      int attempts = 0;
      if (line.is_object()) {
        const std::string sub = text_of(line, "sub");
        attempts = line.value("attempts", 0);
        if (!sub.empty() && open_.count(sub)) {
          waiting_[cache_key] = {std::move(body), attempts};  // in a batch already: wait for it
          return;
        }
        if (sub.empty() && attempts >= settings_.max_attempts && line.contains("reason")) {
          durable_.erase(key("line", cache_key));
          now.push_back({cache_key, failure(text_of(line, "reason"), text_of(line, "message"), attempts)});
        }
      }
      if (now.empty()) {
        queued_bytes_ += request_line(cache_key, body).size();
        waiting_[cache_key] = {std::move(body), attempts};
        queue_.push_back(cache_key);
        last_arrival_ = Clock::now();
      }
    }
  }
  deliver(now, "");
}

void BatchCollector::deliver(const Deliveries& deliveries, const std::string& batch_id) {
  for (const auto& [cache_key, outcome] : deliveries) hooks_.done(cache_key, outcome, batch_id);
}

void BatchCollector::loop() {
  for (;;) {
    bool halted;
    std::optional<std::string> stopped_batches;  // set when the run stops while lines wait
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_; });
      if (stopping_) return;
      halted = halted_;
      if (!waiting_.empty() && hooks_.cancelled()) {
        stopped_batches.emplace();
        for (const auto& [id, s] : open_)
          *stopped_batches += (stopped_batches->empty() ? "" : ", ") + (s.batch_id.empty() ? id : s.batch_id);
      }
    }
    if (halted) continue;
    if (stopped_batches) {
      halt(kCancelled, "stopped while prompts wait for the Batch API (batches: " +
                           (stopped_batches->empty() ? std::string("none yet") : *stopped_batches) +
                           "); the batches stay recorded and the next run collects them");
      continue;
    }
    try {
      submit_ready();
      poll_due();
    } catch (const std::exception& e) {
      halt(kUnfinished, e.what());
    }
    update_gauges();
  }
}

void BatchCollector::halt(const std::string& reason, const std::string& message) {
  Deliveries all;
  {
    std::lock_guard lock(mutex_);
    if (halted_) return;
    halted_ = true;
    halt_reason_ = reason;
    halt_message_ = message;
    for (const auto& [cache_key, line] : waiting_)
      all.push_back({cache_key, unfinished(reason, message, line.attempts)});
    waiting_.clear();
    queue_.clear();
    queued_bytes_ = 0;
  }
  if (reason == kCancelled)
    ctx_.log().info(message);
  else
    ctx_.log().error("batch collection halted: " + message);
  deliver(all, "");
}

void BatchCollector::update_gauges() {
  std::lock_guard lock(mutex_);
  std::int64_t total = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  for (const auto& [id, s] : open_) {
    total += s.counts.total;
    completed += s.counts.completed;
    failed += s.counts.failed;
  }
  ctx_.gauge("batches_in_flight", static_cast<double>(open_.size()));
  ctx_.gauge("batch_lines_waiting", static_cast<double>(waiting_.size()));
  ctx_.gauge("batch_requests_total", static_cast<double>(total));
  ctx_.gauge("batch_requests_completed", static_cast<double>(completed));
  ctx_.gauge("batch_requests_failed", static_cast<double>(failed));
}

// Submissions found in the durable record: forget those never uploaded,
// create (or find) those uploaded, poll the created ones.
void BatchCollector::reattach() {
  std::vector<Submission> found;
  durable_.scan(key("sub", ""), [&](std::string_view k, std::string_view value) {
    const json record = json::parse(value, nullptr, false);
    if (!record.is_object()) return true;
    Submission s;
    s.id = std::string(k.substr(key("sub", "").size()));
    s.state = text_of(record, "state");
    s.file_id = text_of(record, "file_id");
    s.batch_id = text_of(record, "batch_id");
    s.recorded_ms = record.value("recorded_ms", std::int64_t{0});
    s.keys = record.value("keys", std::vector<std::string>{});
    s.attempts = record.value("attempts", std::vector<int>{});
    s.attempts.resize(s.keys.size(), 1);
    found.push_back(std::move(s));
    return true;
  });
  const auto forget = [this](const Submission& s, const std::string& why) {
    for (const std::string& cache_key : s.keys)
      if (text_of(line_record(cache_key), "sub") == s.id) durable_.erase(key("line", cache_key));
    durable_.erase(key("sub", s.id));
    ctx_.log().info("submission " + s.id + " " + why + ": its " + std::to_string(s.keys.size()) +
                    " lines go into a new batch");
  };
  for (Submission& s : found) {
    if (s.state == "recorded") {
      forget(s, "was recorded but never uploaded");
      continue;
    }
    if (s.state == "uploaded") {
      if (std::optional<std::string> batch_id = find_created(s)) {
        s.batch_id = *batch_id;
        s.state = "created";
        put_submission(s);
        ctx_.log().info("found batch " + s.batch_id + " of submission " + s.id + " among the account's batches");
      } else {
        try {
          create(s);
        } catch (const BatchApiError& e) {
          if (!e.refused_with()) throw;  // no answer: it may exist, so it must not be created again
          forget(s, std::string("cannot become a batch (") + e.what() + ")");
          continue;
        }
      }
    }
    ctx_.log().info("re-attached to batch " + s.batch_id + " (" + std::to_string(s.keys.size()) + " lines)");
    open_.emplace(s.id, std::move(s));
  }
}

// The batch created for this submission by an earlier process that did not
// live to record it: listed with metadata distilld_submission = its id.
std::optional<std::string> BatchCollector::find_created(const Submission& s) {
  std::string after;
  for (int page = 0; page < 1000; ++page) {
    const json list = api_->list(after);
    if (!list.contains("data") || !list["data"].is_array()) return std::nullopt;
    for (const json& batch : list["data"]) {
      if (text_of(member(batch, "metadata"), "distilld_submission") == s.id) return text_of(batch, "id");
      // Listed newest first: past batches created well before the record, it cannot be further on.
      if (integer_of(batch, "created_at") * 1000 < s.recorded_ms - 3600 * 1000) return std::nullopt;
      after = text_of(batch, "id");
    }
    if (member(list, "has_more") != true || after.empty()) return std::nullopt;
  }
  return std::nullopt;
}

void BatchCollector::submit_ready() {
  for (;;) {
    std::vector<std::string> keys;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty() || open_.size() >= settings_.max_batches) return;
      const bool full = queue_.size() >= settings_.max_requests || queued_bytes_ >= settings_.max_file_bytes;
      if (!full && Clock::now() - last_arrival_ < settings_.gather) return;
      std::size_t bytes = 0;
      while (!queue_.empty() && keys.size() < settings_.max_requests) {
        const std::size_t size = request_line(queue_.front(), waiting_[queue_.front()].body).size();
        if (!keys.empty() && bytes + size > settings_.max_file_bytes) break;
        bytes += size;
        keys.push_back(queue_.front());
        queue_.pop_front();
      }
      queued_bytes_ -= bytes;
    }
    submit(std::move(keys));
  }
}

void BatchCollector::submit(std::vector<std::string> keys) {
  Submission s;
  std::ostringstream id;
  id << unix_ms() << '-' << ++submissions_made_ << '-' << std::hex << (std::random_device{}() & 0xffffu);
  s.id = id.str();
  s.state = "recorded";
  s.recorded_ms = unix_ms();
  std::string content;
  {
    std::lock_guard lock(mutex_);
    for (const std::string& cache_key : keys) {
      Line& line = waiting_[cache_key];
      line.attempts += 1;
      content += request_line(cache_key, line.body);
      s.attempts.push_back(line.attempts);
    }
  }
  s.keys = std::move(keys);
  put_submission(s);
  for (std::size_t i = 0; i < s.keys.size(); ++i)
    durable_.put(key("line", s.keys[i]), json{{"sub", s.id}, {"attempts", s.attempts[i]}}.dump());
  Submission* recorded;
  {
    std::lock_guard lock(mutex_);
    recorded = &open_.emplace(s.id, std::move(s)).first->second;
  }
  recorded->file_id = api_->upload("distilld-" + recorded->id + ".jsonl", content);
  recorded->state = "uploaded";
  put_submission(*recorded);
  create(*recorded);
  counters_.lines_submitted += static_cast<std::int64_t>(recorded->keys.size());
}

void BatchCollector::create(Submission& s) {
  const json metadata = {{"distilld_submission", s.id},
                         {"distilld_pipeline", settings_.pipeline},
                         {"distilld_step", settings_.step},
                         {"distilld_run", std::to_string(settings_.run)}};
  const json batch =
      api_->create(s.file_id, settings_.completion_window, metadata, [this, &s] { return find_created(s); });
  s.batch_id = text_of(batch, "id");
  s.state = "created";
  put_submission(s);
  ++counters_.batches_created;
  publish(s.batch_id, batch);
  s.next_poll = Clock::now() + settings_.poll;
  ctx_.log().info("created batch " + s.batch_id + ": " + std::to_string(s.keys.size()) + " lines, file " + s.file_id +
                  ", submission " + s.id);
}

void BatchCollector::poll_due() {
  std::vector<Submission*> due;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, s] : open_)
      if (s.state == "created" && Clock::now() >= s.next_poll) due.push_back(&s);
  }
  for (Submission* s : due) {
    const json batch = api_->retrieve(s->batch_id);
    report(*s, batch);
    if (ended(text_of(batch, "status")))
      finish(*s, batch);
    else
      s->next_poll = Clock::now() + settings_.poll;
  }
}

void BatchCollector::report(Submission& s, const json& batch) {
  const json& counts = member(batch, "request_counts");
  {
    std::lock_guard lock(mutex_);
    s.counts = {static_cast<int>(integer_of(counts, "total")), static_cast<int>(integer_of(counts, "completed")),
                static_cast<int>(integer_of(counts, "failed"))};
  }
  publish(s.batch_id, batch);
  std::string line = "batch " + s.batch_id + ": " + text_of(batch, "status") + ", " +
                     std::to_string(s.counts.completed) + "/" + std::to_string(s.counts.total) + " completed, " +
                     std::to_string(s.counts.failed) + " failed";
  if (line == s.last_report) return;
  s.last_report = line;
  ctx_.log().info(line + " (created " + utc(member(batch, "created_at")) + ", expires " +
                  utc(member(batch, "expires_at")) + ")");
}

// The batch's row in the table "batches", as the provider describes it now.
void BatchCollector::publish(const std::string& batch_id, const json& batch) {
  const json& counts = member(batch, "request_counts");
  const json& created = member(batch, "created_at");
  std::vector<std::string> row = {
      batch_id,
      text_of(batch, "status"),
      std::to_string(integer_of(counts, "completed")),
      std::to_string(integer_of(counts, "failed")),
      std::to_string(integer_of(counts, "total")),
      utc(created),
      created.is_number_integer() && window_s_ ? utc(created.get<std::int64_t>() + *window_s_) : "-"};
  const auto same = std::find_if(rows_.begin(), rows_.end(), [&](const auto& r) { return r.front() == batch_id; });
  if (same == rows_.end())
    rows_.push_back(std::move(row));
  else
    *same = std::move(row);
  ctx_.table({kBatchTable, batch_columns(), rows_});
}

void BatchCollector::finish(Submission& s, const json& batch) {
  const std::string status = text_of(batch, "status");
  std::unordered_map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < s.keys.size(); ++i) position.emplace(s.keys[i], i);
  std::vector<std::optional<LineEnd>> ends(s.keys.size());
  std::int64_t ignored = 0;

  for (const char* field : {"output_file_id", "error_file_id"}) {
    const std::string file_id = text_of(batch, field);
    if (file_id.empty()) continue;
    std::istringstream in(api_->content(file_id));
    int number = 0;
    for (std::string text; std::getline(in, text);) {
      ++number;
      if (text.empty()) continue;
      const json line = json::parse(text, nullptr, false);
      const std::string custom_id = text_of(line, "custom_id");
      if (custom_id.empty())
        throw BatchApiError("batch " + s.batch_id + ": line " + std::to_string(number) + " of its " +
                            (std::string(field) == "output_file_id" ? "output" : "error") + " file " + file_id +
                            " is not a Batch API result line (" + text.substr(0, 80) +
                            "); the batch stays recorded: run again to download the file again");
      auto at = custom_id.starts_with(kCustomIdPrefix) ? position.find(custom_id.substr(kCustomIdPrefix.size()))
                                                       : position.end();
      if (at == position.end() || ends[at->second]) {
        ++ignored;
        continue;
      }
      LineEnd& end = ends[at->second].emplace();
      end.outcome.attempts = s.attempts[at->second];
      const json& error = member(line, "error");
      const json& response = member(line, "response");
      if (error.is_object()) {
        const std::string code = text_of(error, "code");
        end.kind = code == "batch_expired" || code == "batch_cancelled" ? LineEnd::resubmit : LineEnd::failed;
        end.outcome = failure("error", code + ": " + text_of(error, "message"), end.outcome.attempts);
      } else if (!member(response, "status_code").is_number_integer()) {
        end.outcome = failure("bad_response", "a result line without a response status", end.outcome.attempts);
      } else {
        const int code = response["status_code"].get<int>();
        const json& body = member(response, "body");
        const std::string body_text = body.is_string() ? body.get<std::string>() : body.dump();
        end.outcome.request_id = text_of(response, "request_id");
        end.outcome.status = code;
        if (code != 200) {
          end.outcome.reason = "batch_http_" + std::to_string(code);
          end.outcome.message = "HTTP " + std::to_string(code) + ": " + body_text.substr(0, 200);
        } else if (std::optional<TokenUsage> usage = hooks_.check(body_text)) {
          end.kind = LineEnd::answered;
          end.outcome.ok = true;
          end.outcome.body = body_text;
          end.outcome.usage = *usage;
        } else {
          end.outcome.reason = "batch_bad_response";
          end.outcome.message = "HTTP 200 with a body that is not a usable chat completion: " + body_text.substr(0, 120);
        }
      }
    }
  }
  std::string batch_error = "the batch failed";
  if (const json& errors = member(batch, "errors"); errors.is_object() && errors.contains("data") &&
                                                         errors["data"].is_array() && !errors["data"].empty())
    batch_error += ": " + text_of(errors["data"][0], "message");
  for (std::size_t i = 0; i < ends.size(); ++i) {
    if (ends[i]) continue;
    LineEnd& end = ends[i].emplace();
    if (status == "expired" || status == "cancelled") {
      end.kind = LineEnd::resubmit;
    } else if (status == "failed") {
      end.outcome = failure("failed", batch_error, s.attempts[i]);
    } else {
      end.outcome = failure("no_answer", "batch " + s.batch_id + " ended without a result for this line", s.attempts[i]);
    }
  }

  Deliveries answered;
  for (std::size_t i = 0; i < ends.size(); ++i)
    if (ends[i]->kind == LineEnd::answered) answered.push_back({s.keys[i], std::move(ends[i]->outcome)});
  deliver(answered, s.batch_id);  // cached before the lines are forgotten below

  Deliveries given_up;
  std::int64_t retried = 0;
  std::int64_t resubmitted = 0;
  {
    std::lock_guard lock(mutex_);
    const auto requeue = [&](const std::string& cache_key, int attempts) {
      durable_.put(key("line", cache_key), json{{"sub", ""}, {"attempts", attempts}}.dump());
      auto waiting = waiting_.find(cache_key);
      if (waiting == waiting_.end()) return;  // its record has not come back yet: request() queues it
      waiting->second.attempts = attempts;
      queued_bytes_ += request_line(cache_key, waiting->second.body).size();
      queue_.push_back(cache_key);
    };
    for (std::size_t i = 0; i < ends.size(); ++i) {
      const std::string& cache_key = s.keys[i];
      LineEnd& end = *ends[i];
      if (end.kind == LineEnd::answered) {
        durable_.erase(key("line", cache_key));
        waiting_.erase(cache_key);
      } else if (end.kind == LineEnd::resubmit) {
        ++resubmitted;
        requeue(cache_key, s.attempts[i] - 1);
      } else if (s.attempts[i] < settings_.max_attempts) {
        ++retried;
        requeue(cache_key, s.attempts[i]);
      } else if (waiting_.erase(cache_key)) {
        durable_.erase(key("line", cache_key));
        given_up.push_back({cache_key, std::move(end.outcome)});
      } else {
        durable_.put(key("line", cache_key), json{{"sub", ""},
                                                  {"attempts", s.attempts[i]},
                                                  {"reason", end.outcome.reason.substr(6)},
                                                  {"message", end.outcome.message}}
                                                 .dump());
      }
    }
    durable_.erase(key("sub", s.id));
  }
  counters_.lines_retried += retried;
  counters_.lines_resubmitted += resubmitted;
  counters_.answers_ignored += ignored;
  ctx_.log().info("batch " + s.batch_id + " " + status + ": " + std::to_string(answered.size()) + " answered, " +
                  std::to_string(retried) + " to retry, " + std::to_string(given_up.size()) + " given up, " +
                  std::to_string(resubmitted) + " resubmitted, " + std::to_string(ignored) + " results ignored");
  const std::string batch_id = s.batch_id;
  {
    std::lock_guard lock(mutex_);
    open_.erase(s.id);
  }
  deliver(given_up, batch_id);
}

}  // namespace distill::teacher
