// The Files and Batch API state machine of the local teacher (see batch_store.h).
#include "batch_store.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <sstream>

namespace distill::teacher {
namespace {

using nlohmann::ordered_json;
using json = nlohmann::json;

constexpr std::int64_t kWindowMs = 24LL * 3600 * 1000;

std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string dump(const ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Reply error_reply(int status, std::string_view message, std::optional<std::string> param = std::nullopt) {
  return {status, error_body(message, "invalid_request_error", param, std::nullopt)};
}

ordered_json seconds_or_null(std::int64_t ms) { return ms ? ordered_json(ms / 1000) : ordered_json(nullptr); }

// One output or error file line: {"id","custom_id","response":{status_code,request_id,body},"error"}.
std::string result_line(const std::string& id, const std::string& custom_id, int status,
                        const std::string& request_id, const std::string& body) {
  ordered_json line = ordered_json::object();
  line["id"] = id;
  line["custom_id"] = custom_id;
  ordered_json response = ordered_json::object();
  response["status_code"] = status;
  response["request_id"] = request_id;
  response["body"] = ordered_json::parse(body);
  line["response"] = std::move(response);
  line["error"] = nullptr;
  return dump(line) + "\n";
}

std::string expired_line(const std::string& id, const std::string& custom_id) {
  ordered_json line = ordered_json::object();
  line["id"] = id;
  line["custom_id"] = custom_id;
  line["response"] = nullptr;
  line["error"] = {{"code", "batch_expired"},
                   {"message", "This request could not be executed before the completion window expired."}};
  return dump(line) + "\n";
}

}  // namespace

BatchStore::BatchStore(BatchOptions options, std::function<void(const LogEntry&)> log)
    : options_(options), log_(std::move(log)), malformed_left_(options.malformed_output_downloads) {}

// A batch just created is logged with the custom_ids of its input file, so
// a test can count how often each line was submitted.
void BatchStore::log_api(std::string_view api, int status, const Batch* created) {
  LogEntry entry;
  entry.t_ms = unix_ms();
  entry.status = status;
  entry.api = api;
  if (created) {
    entry.batch_id = created->id;
    std::istringstream in(files_[created->input_file_id].content);
    for (std::string line; std::getline(in, line);) {
      const json request = json::parse(line, nullptr, false);
      if (request.is_object() && request.contains("custom_id") && request["custom_id"].is_string())
        entry.lines.push_back(request["custom_id"].get<std::string>());
    }
  }
  log_(entry);
}

std::string BatchStore::store_file(std::string purpose, std::string filename, std::string content,
                                   bool batch_output) {
  File file{"file-" + std::to_string(++next_id_), std::move(purpose), std::move(filename), std::move(content),
            unix_ms() / 1000, batch_output};
  const std::string id = file.id;
  files_[id] = std::move(file);
  return id;
}

Reply BatchStore::upload(std::string_view purpose, std::string_view filename, std::string content) {
  std::lock_guard lock(mutex_);
  Reply reply;
  if (purpose != "batch" && purpose != "fine-tune" && purpose != "assistants") {
    reply = error_reply(400, "'" + std::string(purpose) + "' is not a supported purpose.", "purpose");
  } else {
    const std::size_t bytes = content.size();
    const std::string id = store_file(std::string(purpose), std::string(filename), std::move(content), false);
    const File& file = files_[id];
    ordered_json body = ordered_json::object();
    body["id"] = id;
    body["object"] = "file";
    body["bytes"] = bytes;
    body["created_at"] = file.created_at;
    body["filename"] = file.filename;
    body["purpose"] = file.purpose;
    reply.body = dump(body);
  }
  log_api("POST /v1/files", reply.status);
  return reply;
}

Reply BatchStore::file_content(const std::string& file_id) {
  std::lock_guard lock(mutex_);
  Reply reply;
  auto it = files_.find(file_id);
  if (it == files_.end()) {
    reply = error_reply(404, "No such File object: " + file_id, "id");
  } else {
    reply.body = it->second.content;
    if (it->second.batch_output && malformed_left_ > 0) {
      --malformed_left_;
      reply.body = malformed_body(reply.body);
    }
  }
  log_api("GET /v1/files/content", reply.status);
  return reply;
}

Reply BatchStore::create(std::string_view text) {
  std::lock_guard lock(mutex_);
  Reply reply;
  const json request = json::parse(text, nullptr, false);
  const auto field = [&request](const char* name) {
    return request.is_object() && request.contains(name) && request[name].is_string() ? request[name].get<std::string>()
                                                                                     : std::string();
  };
  const std::string input = field("input_file_id");
  auto file = files_.find(input);
  if (!request.is_object()) {
    reply = error_reply(400, "The request body is not a JSON object.");
  } else if (file == files_.end() || file->second.purpose != "batch") {
    reply = error_reply(400, "No batch input file with id '" + input + "'.", "input_file_id");
  } else if (field("endpoint") != "/v1/chat/completions") {
    reply = error_reply(400, "Only /v1/chat/completions is supported as endpoint.", "endpoint");
  } else if (field("completion_window") != "24h") {
    reply = error_reply(400, "completion_window must be '24h'.", "completion_window");
  } else {
    Batch batch;
    batch.id = "batch_" + std::to_string(++next_id_);
    batch.input_file_id = input;
    batch.completion_window = "24h";
    batch.metadata = request.contains("metadata") ? request["metadata"].dump() : "null";
    batch.created_ms = unix_ms();
    batch.expires = static_cast<int>(batches_.size()) < options_.expire_first;
    batches_.push_back(batch);
    reply.body = batch_json(batch);
    log_api("POST /v1/batches", reply.status, &batch);
    return reply;
  }
  log_api("POST /v1/batches", reply.status);
  return reply;
}

Reply BatchStore::retrieve(const std::string& batch_id) {
  std::lock_guard lock(mutex_);
  Reply reply = error_reply(404, "No such batch: " + batch_id, "batch_id");
  for (Batch& batch : batches_)
    if (batch.id == batch_id) {
      advance(batch);
      reply = {200, batch_json(batch)};
    }
  log_api("GET /v1/batches/{id}", reply.status);
  return reply;
}

Reply BatchStore::list(const std::optional<std::string>& after, int limit) {
  std::lock_guard lock(mutex_);
  ordered_json data = ordered_json::array();
  bool started = !after;
  bool has_more = false;
  for (auto it = batches_.rbegin(); it != batches_.rend(); ++it) {  // newest first
    if (!started) {
      started = it->id == *after;
      continue;
    }
    if (static_cast<int>(data.size()) == limit) {
      has_more = true;
      break;
    }
    advance(*it);
    data.push_back(ordered_json::parse(batch_json(*it)));
  }
  ordered_json body = ordered_json::object();
  body["object"] = "list";
  body["first_id"] = data.empty() ? ordered_json(nullptr) : data.front()["id"];
  body["last_id"] = data.empty() ? ordered_json(nullptr) : data.back()["id"];
  body["has_more"] = has_more;
  body["data"] = std::move(data);
  log_api("GET /v1/batches", 200);
  return {200, dump(body)};
}

Reply BatchStore::cancel(const std::string& batch_id) {
  std::lock_guard lock(mutex_);
  Reply reply = error_reply(404, "No such batch: " + batch_id, "batch_id");
  for (Batch& batch : batches_)
    if (batch.id == batch_id) {
      advance(batch);
      if (batch.status == "validating" || batch.status == "in_progress") {
        batch.status = "cancelled";
        batch.ended_ms = unix_ms();
      }
      reply = {200, batch_json(batch)};
    }
  log_api("POST /v1/batches/{id}/cancel", reply.status);
  return reply;
}

void BatchStore::advance(Batch& batch) {
  if (batch.status != "validating" && batch.status != "in_progress") return;
  const std::int64_t age = unix_ms() - batch.created_ms;
  if (age >= options_.delay_ms) {
    run_lines(batch);
  } else if (age >= options_.delay_ms / 10) {
    batch.status = "in_progress";
  }
}

// Answers the input file's lines (an expiring batch only its first half)
// and writes the output and error files. An input line that is not a
// Batch API request fails the whole batch, as validation does at OpenAI.
void BatchStore::run_lines(Batch& batch) {
  std::vector<json> requests;
  std::istringstream in(files_[batch.input_file_id].content);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty()) continue;
    json request = json::parse(line, nullptr, false);
    if (!request.is_object() || !request.contains("custom_id") || !request["custom_id"].is_string() ||
        !request.contains("body") || !request["body"].is_object() || request.value("url", "") != "/v1/chat/completions") {
      batch.status = "failed";
      batch.ended_ms = unix_ms();
      batch.errors = dump(ordered_json{{"object", "list"},
                                       {"data", ordered_json::array({{{"code", "invalid_request"},
                                                                      {"message", "Line is not a Batch API request."},
                                                                      {"line", number}}})}});
      return;
    }
    requests.push_back(std::move(request));
  }
  batch.total = static_cast<int>(requests.size());
  std::string output;
  std::string errors;
  const std::size_t answered = batch.expires ? requests.size() / 2 : requests.size();
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const std::string custom_id = requests[i]["custom_id"].get<std::string>();
    const std::string line_id = "batch_req_" + std::to_string(++next_id_);
    if (i >= answered) {
      errors += expired_line(line_id, custom_id);
      ++batch.failed;
      continue;
    }
    LogEntry entry;
    entry.batch_id = batch.id;
    entry.custom_id = custom_id;
    entry.request_id = "req_b" + std::to_string(next_id_);
    auto parsed = parse_chat_request(requests[i]["body"].dump());
    if (const auto* error = std::get_if<RequestError>(&parsed)) {
      entry.status = 400;
      errors += result_line(line_id, custom_id, 400, entry.request_id,
                            error_body(error->message, "invalid_request_error", error->param, std::nullopt));
    } else {
      const ChatRequest& request = std::get<ChatRequest>(parsed);
      const std::uint64_t hash = prompt_hash(request.messages);
      entry.model = request.model;
      entry.prompt_sha = hex64(hash);
      entry.n = request.n;
      const FaultRates rates{0, options_.line_failure_rate, 0, 0, 0, 0, 0};
      entry.fault = draw_fault(rates, options_.seed, ++lines_run_);
      if (entry.fault == Fault::server_error) {
        entry.status = 500;
        errors += result_line(line_id, custom_id, 500, entry.request_id, server_error_body());
      } else {
        const Answer answer = teacher::answer(request.messages, hash, options_.noise);
        entry.noise = answer.noise;
        entry.status = 200;
        output += result_line(line_id, custom_id, 200, entry.request_id,
                              completion_body(request, answer, hash, batch.created_ms / 1000));
      }
    }
    (entry.status == 200 ? batch.completed : batch.failed)++;
    entry.t_ms = unix_ms();
    log_(entry);
  }
  batch.status = batch.expires ? "expired" : "completed";
  batch.ended_ms = unix_ms();
  if (!output.empty()) batch.output_file_id = store_file("batch_output", batch.id + "_output.jsonl", output, true);
  if (!errors.empty()) batch.error_file_id = store_file("batch_output", batch.id + "_error.jsonl", errors, false);
}

std::string BatchStore::batch_json(const Batch& batch) const {
  ordered_json body = ordered_json::object();
  body["id"] = batch.id;
  body["object"] = "batch";
  body["endpoint"] = "/v1/chat/completions";
  body["errors"] = ordered_json::parse(batch.errors);
  body["input_file_id"] = batch.input_file_id;
  body["completion_window"] = batch.completion_window;
  body["status"] = batch.status;
  body["output_file_id"] = batch.output_file_id.empty() ? ordered_json(nullptr) : ordered_json(batch.output_file_id);
  body["error_file_id"] = batch.error_file_id.empty() ? ordered_json(nullptr) : ordered_json(batch.error_file_id);
  body["created_at"] = batch.created_ms / 1000;
  body["in_progress_at"] = batch.status == "validating" ? ordered_json(nullptr) : ordered_json(batch.created_ms / 1000);
  body["expires_at"] = (batch.created_ms + kWindowMs) / 1000;
  body["completed_at"] = batch.status == "completed" ? seconds_or_null(batch.ended_ms) : ordered_json(nullptr);
  body["failed_at"] = batch.status == "failed" ? seconds_or_null(batch.ended_ms) : ordered_json(nullptr);
  body["expired_at"] = batch.status == "expired" ? seconds_or_null(batch.ended_ms) : ordered_json(nullptr);
  body["cancelled_at"] = batch.status == "cancelled" ? seconds_or_null(batch.ended_ms) : ordered_json(nullptr);
  body["request_counts"] = {{"total", batch.total}, {"completed", batch.completed}, {"failed", batch.failed}};
  body["metadata"] = ordered_json::parse(batch.metadata);
  return dump(body);
}

}  // namespace distill::teacher
