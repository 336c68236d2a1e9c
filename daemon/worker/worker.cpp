// One pipeline run in a process of its own, reporting to the daemon.
#include "worker/worker.h"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/run.h"
#include "rpc/convert.h"
#include "rpc/wire.h"
#include "spec/pipeline_spec.h"
#include "worker/remote_shared.h"

namespace distill::worker {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int signal) { g_stop_signal = signal; }

constexpr auto kReportEvery = std::chrono::milliseconds(200);
// A worker of the same pipeline that the daemon stopped may still be
// committing its last checkpoint, holding the database's lock.
constexpr auto kWaitForLock = std::chrono::seconds(60);

class Reporter {
 public:
  explicit Reporter(int fd) : fd_(fd) {}
  // A daemon that is gone cannot be told: the write fails and the run goes on.
  void send(const std::string& frame) {
    std::size_t done = 0;
    while (done < frame.size()) {
      const ssize_t n = ::write(fd_, frame.data() + done, frame.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }
  void status(const rpc::PipelineStatus& status) { send(rpc::encode_report(status)); }
  void error(const std::string& message) {
    rpc::PipelineStatus status;
    status.info.error = message;
    send(rpc::encode_report(status));
    engine::LogLine line{0, 0, "error", "", message};
    send(rpc::encode_report(rpc::to_rpc(line)));
  }
  void logs(const engine::Run& run) {
    for (const engine::LogLine& line : run.log_since(logged_)) {
      send(rpc::encode_report(rpc::to_rpc(line)));
      logged_ = line.seq;
    }
  }

 private:
  int fd_;
  std::uint64_t logged_ = 0;
};

std::unique_ptr<store::Store> open_store(const std::filesystem::path& dir) {
  const auto until = std::chrono::steady_clock::now() + kWaitForLock;
  for (;;) {
    try {
      return store::Store::open(dir);
    } catch (const store::StoreError& e) {
      const bool locked = std::string(e.what()).find("lock") != std::string::npos;
      if (!locked || std::chrono::steady_clock::now() > until || g_stop_signal) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::optional<std::string> read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int run_worker(const WorkerOptions& options) {
  // The daemon's death stops this run at its next checkpoint; the next
  // daemon resumes it.
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() == 1) g_stop_signal = SIGTERM;  // the daemon died before prctl()
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGXFSZ, SIG_IGN);
  Reporter reporter(options.report_fd);

  const std::optional<std::string> text = read_text(options.pipeline_text);
  if (!text) {
    reporter.error("cannot read the stored pipeline " + options.pipeline_text.string());
    return 1;
  }
  plugins::Registry registry;
  for (const auto& dir : plugins::Registry::default_dirs()) registry.load_dir(dir);
  spec::LoadResult loaded = spec::load_pipeline_text(*text, options.file, registry);
  if (!loaded.spec) {
    std::string message = "the pipeline is no longer valid:";
    for (const Diagnostic& d : loaded.diagnostics) message += "\n" + spec::format(d);
    reporter.error(message);
    return 1;
  }
  spec::PipelineSpec& spec = *loaded.spec;
  spec.state_dir = options.state_dir;

  std::unique_ptr<store::Store> store;
  try {
    store = open_store(spec.state_dir);
  } catch (const std::exception& e) {
    reporter.error(e.what());
    return g_stop_signal ? 130 : 1;
  }
  const unsigned threads = options.threads ? std::min(options.threads, spec.engine.threads) : spec.engine.threads;
  std::optional<tbb::global_control> allow_threads;
  if (static_cast<int>(threads) > tbb::info::default_concurrency())
    allow_threads.emplace(tbb::global_control::max_allowed_parallelism, threads);

  engine::RunOptions run_options;
  run_options.new_run = options.new_run;
  run_options.max_threads = options.threads;
  if (!options.shared_socket.empty()) {
    auto link = std::make_shared<SharedLink>(options.shared_socket);
    run_options.open_shared = [link](std::string_view name) -> std::unique_ptr<KeyValue> {
      return std::make_unique<RemoteNamespace>(link, std::string(name));
    };
  }
  engine::Run run(*store, spec, run_options);
  std::thread executor([&] { run.execute(); });
  while (run.snapshot().status == store::RunStatus::Running) {
    std::this_thread::sleep_for(kReportEvery);
    if (g_stop_signal) run.stop();
    reporter.logs(run);
    reporter.status(rpc::status_of(run.snapshot()));
  }
  executor.join();
  reporter.logs(run);
  const engine::RunSnapshot last = run.snapshot();
  reporter.status(rpc::status_of(last));
  if (last.status == store::RunStatus::Completed) return 0;
  if (last.status == store::RunStatus::Stopped) return 130;
  return 1;
}

}  // namespace distill::worker
