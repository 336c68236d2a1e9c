// The daemon's process: state folder, socket, Thrift server, signals.
#include "server/serve.h"

#include <sys/stat.h>
#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TServerSocket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <future>
#include <iostream>
#include <thread>

#include "rpc/wire.h"
#include "server/controller.h"
#include "server/handler.h"
#include "server/shared_service.h"

namespace distill::server {
namespace {

namespace fs = std::filesystem;

// A client that sends half a request is dropped after this long; it holds
// only its own thread meanwhile.
constexpr int kClientTimeoutMs = 60000;
constexpr auto kListenTimeout = std::chrono::seconds(10);

void say(const std::string& message) { std::cerr << "distilld serve: " << message << std::endl; }

// A threaded Thrift server on a UNIX socket created mode 0600 (under a
// umask of 0177, so it is never open to others, even for a moment).
class Listener {
 public:
  Listener(const fs::path& path, std::shared_ptr<apache::thrift::TProcessor> processor) : path_(path) {
    std::error_code ec;
    fs::remove(path_, ec);
    auto socket = std::make_shared<apache::thrift::transport::TServerSocket>(path_.string());
    socket->setRecvTimeout(kClientTimeoutMs);
    socket->setSendTimeout(kClientTimeoutMs);
    std::promise<void> listening;
    std::future<void> listened = listening.get_future();
    socket->setListenCallback([&](THRIFT_SOCKET) {
      ::chmod(path_.c_str(), S_IRUSR | S_IWUSR);
      listening.set_value();
    });
    server_ = std::make_unique<apache::thrift::server::TThreadedServer>(
        processor, socket, rpc::framed_transport_factory(), rpc::binary_protocol_factory());
    const mode_t old_mask = ::umask(0177);
    thread_ = std::thread([this] {
      try {
        server_->serve();
      } catch (const std::exception& e) {
        say("the socket " + path_.string() + " failed: " + e.what());
        ::kill(::getpid(), SIGTERM);
      }
    });
    const bool ready = listened.wait_for(kListenTimeout) == std::future_status::ready;
    ::umask(old_mask);
    if (!ready) {
      stop();
      throw std::runtime_error("cannot listen on " + path_.string());
    }
  }
  ~Listener() { stop(); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

 private:
  void stop() {
    if (!thread_.joinable()) return;
    server_->stop();
    thread_.join();
    std::error_code ec;
    fs::remove(path_, ec);
  }
  fs::path path_;
  std::unique_ptr<apache::thrift::server::TThreadedServer> server_;
  std::thread thread_;
};

bool prepare_state_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (!ec) fs::permissions(dir, fs::perms::owner_all, ec);
  }
  if (ec || !fs::is_directory(dir, ec)) {
    say("cannot use " + dir.string() + " as the state folder" + (ec ? ": " + ec.message() : ""));
    return false;
  }
  return true;
}

}  // namespace

int serve(const ServeOptions& options) {
  // Signals are taken by sigwait() below: block them before any thread
  // exists, so every thread inherits the block.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const fs::path state_dir = fs::absolute(options.state_dir).lexically_normal();
  if (!prepare_state_dir(state_dir)) return 1;
  ControllerOptions controller_options;
  controller_options.state_dir = state_dir;
  controller_options.grace = options.grace;
  controller_options.thread_budget = options.threads;
  controller_options.max_crashes = options.max_crashes;
  controller_options.distilld = options.distilld;
  std::unique_ptr<Controller> controller;
  try {
    controller = std::make_unique<Controller>(controller_options);
  } catch (const std::exception& e) {
    const std::string why = e.what();
    say(why.find("lock") != std::string::npos ? "another daemon serves " + state_dir.string() + " (" + why + ")"
                                              : "cannot open the daemon's database: " + why);
    return 1;
  }

  // The database's lock proves no other daemon serves this folder: socket
  // files left there are stale.
  const fs::path socket_path = state_dir / "control.sock";
  const fs::path shared_socket_path = state_dir / "shared.sock";
  std::unique_ptr<Listener> control;
  std::unique_ptr<Listener> shared;
  try {
    auto shared_service = std::make_shared<SharedService>(state_dir / "shared");
    shared = std::make_unique<Listener>(shared_socket_path, std::make_shared<rpc::SharedStateProcessor>(shared_service));
    control = std::make_unique<Listener>(
        socket_path, std::make_shared<rpc::DistillProcessor>(std::make_shared<Handler>(*controller)));
  } catch (const std::exception& e) {
    say(e.what());
    return 1;
  }
  controller->resume_interrupted();
  say("serving " + state_dir.string() + " on " + socket_path.string());

  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal == SIGHUP) {
      const rpc::RescanResult rescan = controller->rescan_plugins();
      say("rescanned the plugin folders: " + std::to_string(rescan.added.size()) + " plugins added");
      continue;
    }
    say(std::string("shutting down on ") + ::sigabbrev_np(signal) + ": stopping the workers at their checkpoints");
    break;
  }
  const auto began = std::chrono::steady_clock::now();
  control.reset();  // no more calls; then the workers stop, still reaching the shared store
  controller->shut_down();
  shared.reset();
  say("stopped after " +
      std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count()) + " s");
  return 0;
}

}  // namespace distill::server
