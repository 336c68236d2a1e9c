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

namespace distill::server {
namespace {

namespace fs = std::filesystem;

// A client that sends half a request is dropped after this long; it holds
// only its own thread meanwhile.
constexpr int kClientTimeoutMs = 60000;
constexpr auto kListenTimeout = std::chrono::seconds(10);

void say(const std::string& message) { std::cerr << "distilld serve: " << message << std::endl; }

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

  // The database's lock proves no other daemon serves this folder: a
  // socket file left there is stale.
  const fs::path socket_path = state_dir / "control.sock";
  std::error_code ec;
  fs::remove(socket_path, ec);
  auto server_socket = std::make_shared<apache::thrift::transport::TServerSocket>(socket_path.string());
  server_socket->setRecvTimeout(kClientTimeoutMs);
  server_socket->setSendTimeout(kClientTimeoutMs);
  std::promise<void> listening;
  server_socket->setListenCallback([&](THRIFT_SOCKET) {
    ::chmod(socket_path.c_str(), S_IRUSR | S_IWUSR);
    listening.set_value();
  });
  auto handler = std::make_shared<Handler>(*controller);
  apache::thrift::server::TThreadedServer server(std::make_shared<rpc::DistillProcessor>(handler), server_socket,
                                                 rpc::framed_transport_factory(), rpc::binary_protocol_factory());
  // The socket is created with no permission for group and others; the
  // listen callback makes sure of it.
  const mode_t old_mask = ::umask(0177);
  std::future<void> listened = listening.get_future();
  std::thread serving([&] {
    try {
      server.serve();
    } catch (const std::exception& e) {
      say(std::string("the control socket failed: ") + e.what());
      ::kill(::getpid(), SIGTERM);
    }
  });
  const bool ready = listened.wait_for(kListenTimeout) == std::future_status::ready;
  ::umask(old_mask);
  if (!ready) {
    say("cannot listen on " + socket_path.string());
    server.stop();
    serving.join();
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
  server.stop();
  serving.join();
  controller->shut_down();
  fs::remove(socket_path, ec);
  say("stopped after " +
      std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count()) + " s");
  return 0;
}

}  // namespace distill::server
