// Worker processes: one poll() loop over their report pipes and a wake-up
// pipe, with timers for delayed launches and for SIGKILL after a grace period.
#include "server/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

extern char** environ;

namespace distill::server {
namespace {

constexpr int kReportFd = 3;  // where a worker finds its report pipe

}  // namespace

Supervisor::Supervisor(Events events) : events_(std::move(events)) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::runtime_error(std::string("cannot create the supervisor's pipe: ") + std::strerror(errno));
  wake_read_ = fds[0];
  wake_write_ = fds[1];
  thread_ = std::thread([this] { loop(); });
}

Supervisor::~Supervisor() {
  if (thread_.joinable()) shutdown(Clock::now());
  ::close(wake_read_);
  ::close(wake_write_);
}

void Supervisor::wake() {
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_write_, &byte, 1);  // a full pipe wakes the loop all the same
}

void Supervisor::launch(Launch launch, std::chrono::milliseconds delay) {
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) return;
    const std::string name = launch.pipeline;
    pending_.insert_or_assign(name, Pending{std::move(launch), Clock::now() + delay});
  }
  wake();
}

bool Supervisor::cancel(const std::string& pipeline) {
  std::lock_guard lock(mutex_);
  return pending_.erase(pipeline) > 0;
}

void Supervisor::terminate(const std::string& pipeline, std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mutex_);
    pending_.erase(pipeline);
    const auto it = workers_.find(pipeline);
    if (it == workers_.end()) return;
    ::kill(it->second.pid, SIGTERM);
    const Clock::time_point at = Clock::now() + grace;
    if (!it->second.kill_at || at < *it->second.kill_at) it->second.kill_at = at;
  }
  wake();
}

void Supervisor::shutdown(Clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
    shutdown_deadline_ = deadline;
    pending_.clear();
    for (auto& [name, worker] : workers_) {
      ::kill(worker.pid, SIGTERM);
      worker.kill_at = deadline;
    }
  }
  wake();
  if (thread_.joinable()) thread_.join();
}

bool Supervisor::has_worker(const std::string& pipeline) const {
  std::lock_guard lock(mutex_);
  return workers_.count(pipeline) || pending_.count(pipeline);
}

std::size_t Supervisor::running() const {
  std::lock_guard lock(mutex_);
  return workers_.size();
}

int Supervisor::poll_timeout_ms() const {
  std::optional<Clock::time_point> next;
  auto consider = [&next](Clock::time_point t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [name, pending] : pending_) consider(pending.due);
  for (const auto& [name, worker] : workers_)
    if (worker.kill_at) consider(*worker.kill_at);
  if (!next) return 1000;
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(wait + 1, 0, 1000));
}

void Supervisor::loop() {
  for (;;) {
    std::vector<pollfd> fds = {{wake_read_, POLLIN, 0}};
    std::vector<std::string> names;
    int timeout = 0;
    {
      std::lock_guard lock(mutex_);
      if (shutting_down_ && workers_.empty()) return;
      for (const auto& [name, worker] : workers_) {
        fds.push_back({worker.report_fd, POLLIN, 0});
        names.push_back(name);
      }
      timeout = poll_timeout_ms();
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) continue;
    if (fds[0].revents) {
      char drain[256];
      while (::read(wake_read_, drain, sizeof drain) > 0) {
      }
    }
    for (std::size_t i = 1; i < fds.size(); ++i)
      if (fds[i].revents) read_reports(names[i - 1]);

    std::vector<Launch> due;
    {
      std::lock_guard lock(mutex_);
      const Clock::time_point now = Clock::now();
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.due <= now && !workers_.count(it->first)) {
          due.push_back(std::move(it->second.launch));
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& [name, worker] : workers_)
        if (worker.kill_at && *worker.kill_at <= now) {
          ::kill(worker.pid, SIGKILL);
          worker.kill_at.reset();
        }
    }
    for (Launch& launch : due) spawn(std::move(launch));
  }
}

void Supervisor::spawn(Launch launch) {
  WorkerExit failed{launch.pipeline, -1, 0, true, ""};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    failed.start_error = std::string("cannot create a pipe: ") + std::strerror(errno);
    events_.exited(failed);
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, launch.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_adddup2(&actions, fds[1], kReportFd);
  posix_spawn_file_actions_addclosefrom_np(&actions, kReportFd + 1);
  // The daemon blocks the signals it waits for, and ignores SIGPIPE; a
  // worker starts with neither, so SIGTERM (and its PDEATHSIG) reach it.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (std::string& a : launch.argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  const int error = ::posix_spawn(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (error != 0) {
    ::close(fds[0]);
    failed.start_error = "cannot start " + launch.argv[0] + ": " + std::strerror(error);
    events_.exited(failed);
    return;
  }
  std::lock_guard lock(mutex_);
  Worker& worker = workers_[launch.pipeline];
  worker.pid = pid;
  worker.report_fd = fds[0];
  if (shutting_down_) {
    ::kill(pid, SIGTERM);
    worker.kill_at = shutdown_deadline_;
  }
}

void Supervisor::read_reports(const std::string& pipeline) {
  Worker* worker = nullptr;
  {
    std::lock_guard lock(mutex_);
    worker = &workers_.at(pipeline);  // map nodes stay put; only this thread erases them
  }
  char buffer[65536];
  const ssize_t n = ::read(worker->report_fd, buffer, sizeof buffer);
  if (n < 0 && errno == EINTR) return;
  if (n <= 0) {
    reap(pipeline);
    return;
  }
  worker->reader.feed(buffer, static_cast<std::size_t>(n));
  try {
    while (std::optional<rpc::WorkerReport> report = worker->reader.next()) events_.report(pipeline, std::move(*report));
  } catch (const std::exception&) {
    // A worker that writes garbage is broken: end it; its exit is reported.
    ::kill(worker->pid, SIGKILL);
  }
}

void Supervisor::reap(const std::string& pipeline) {
  pid_t pid = 0;
  {
    std::lock_guard lock(mutex_);
    Worker& worker = workers_.at(pipeline);
    ::close(worker.report_fd);
    pid = worker.pid;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard lock(mutex_);
    workers_.erase(pipeline);
  }
  WorkerExit exit{pipeline, -1, 0, false, ""};
  if (WIFEXITED(status)) exit.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
  events_.exited(exit);
}

}  // namespace distill::server
