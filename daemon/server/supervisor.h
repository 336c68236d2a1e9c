// The daemon's worker processes: starting them (now or after a delay),
// reading their reports, stopping them (SIGTERM, then SIGKILL after a grace
// period) and reaping them. One thread does all of it, and it is the thread
// that starts every worker, so a worker's PR_SET_PDEATHSIG (which follows
// the thread that started it) fires only when the daemon itself dies.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rpc/wire.h"

namespace distill::server {

using Clock = std::chrono::steady_clock;

struct Launch {
  std::string pipeline;
  std::vector<std::string> argv;   // argv[0] is the program's path
  std::filesystem::path log_file;  // the worker's stdout and stderr, appended
};

struct WorkerExit {
  std::string pipeline;
  int exit_code = -1;  // -1 when a signal ended it
  int signal = 0;
  bool start_failed = false;  // the process could not be started (log_file says why)
  std::string start_error;
};

class Supervisor {
 public:
  struct Events {
    // Both are called on the supervisor's thread, with no lock of its own held.
    std::function<void(const std::string& pipeline, rpc::WorkerReport report)> report;
    std::function<void(const WorkerExit& exit)> exited;
  };

  explicit Supervisor(Events events);
  ~Supervisor();  // shuts down with no grace if shutdown() was not called
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts a worker after `delay` (replacing a launch of the same pipeline
  // still waiting). Ignored once shutdown() began.
  void launch(Launch launch, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  // Forgets a launch still waiting; true when there was one.
  bool cancel(const std::string& pipeline);
  // SIGTERM now, SIGKILL after `grace` if it still runs.
  void terminate(const std::string& pipeline, std::chrono::milliseconds grace);
  // Terminates every worker (SIGKILL at `deadline`) and returns once all
  // have exited and been reported.
  void shutdown(Clock::time_point deadline);

  bool has_worker(const std::string& pipeline) const;  // running, or waiting to start
  std::size_t running() const;

 private:
  struct Worker {
    pid_t pid = 0;
    int report_fd = -1;
    rpc::ReportReader reader;
    std::optional<Clock::time_point> kill_at;
  };
  struct Pending {
    Launch launch;
    Clock::time_point due;
  };

  void loop();
  void wake();
  void spawn(Launch launch);
  void read_reports(const std::string& pipeline);
  void reap(const std::string& pipeline);
  int poll_timeout_ms() const;

  Events events_;
  int wake_read_ = -1;
  int wake_write_ = -1;
  mutable std::mutex mutex_;  // guards the fields below
  std::map<std::string, Worker> workers_;
  std::map<std::string, Pending> pending_;
  bool shutting_down_ = false;
  std::optional<Clock::time_point> shutdown_deadline_;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace distill::server
