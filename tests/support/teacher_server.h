// Runs examples/teacher's distill-teacher as a child process for a test:
// on a free loopback port, with a request log the test reads to count
// paid calls and Batch API submissions; stopped with SIGTERM when the
// object goes away.
#pragma once

#include <signal.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "process.h"
#include "test_dir.h"

namespace distill::testing {

class TeacherServer {
 public:
  // `flags`: extra command-line flags, e.g. {"--rate-429", "0.1"}.
  TeacherServer(const std::filesystem::path& dir, std::vector<std::string> flags) : log_(dir / "teacher-requests.jsonl") {
    const std::filesystem::path port_file = dir / "teacher.port";
    // A server started earlier in the same folder left these behind.
    std::filesystem::remove(port_file);
    std::filesystem::remove(log_);
    std::vector<std::string> argv = {std::getenv("DISTILL_TEACHER_BIN"), "--port", "0", "--port-file", port_file.string(),
                                     "--log", log_.string()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    pid_ = spawn(argv, (dir / "teacher.stderr").string());
    for (int i = 0; i < 500 && port_.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      port_ = read_file(port_file);
      while (!port_.empty() && (port_.back() == '\n' || port_.back() == ' ')) port_.pop_back();
    }
    if (port_.empty()) throw std::runtime_error("distill-teacher did not start: " + read_file(dir / "teacher.stderr"));
  }
  ~TeacherServer() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  TeacherServer(const TeacherServer&) = delete;
  TeacherServer& operator=(const TeacherServer&) = delete;

  std::string base_url() const { return "http://127.0.0.1:" + port_ + "/v1"; }

  // Every request the server answered, as logged. A last line the server
  // is still writing (no newline yet) is left for the next call.
  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> lines;
    const std::string text = read_file(log_);
    std::istringstream in(text.substr(0, text.rfind('\n') + 1));  // npos + 1 == 0: no complete line yet
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  // Requests that a paying client would have been charged for: complete,
  // well-formed answers, online or as Batch API lines (not Files or Batch API
  // calls, nor 200s whose JSON or body was cut off).
  std::size_t paid_calls() const {
    std::size_t paid = 0;
    for (const auto& r : requests()) {
      const std::string fault = r.value("fault", "none");
      if (!r.contains("api") && r.value("status", 0) == 200 && fault != "malformed" && fault != "half_sent") ++paid;
    }
    return paid;
  }

  // Files and Batch API calls named `api` (e.g. "POST /v1/batches"), as logged.
  std::vector<nlohmann::json> api_calls(const std::string& api) const {
    std::vector<nlohmann::json> calls;
    for (auto& r : requests())
      if (r.value("api", "") == api) calls.push_back(std::move(r));
    return calls;
  }

  // custom_id -> how many batches were created holding it.
  std::map<std::string, int> batch_submissions() const {
    std::map<std::string, int> count;
    for (const auto& call : api_calls("POST /v1/batches"))
      for (const auto& line : call.value("lines", nlohmann::json::array())) ++count[line.get<std::string>()];
    return count;
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  std::string port_;
};

}  // namespace distill::testing
