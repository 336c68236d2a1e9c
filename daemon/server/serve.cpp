// The daemon's process: state folder, socket, Thrift server, signals.
#include "server/serve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <thrift/TOutput.h>
#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TServerSocket.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <iostream>
#include <thread>

#include "rpc/wire.h"
#include "server/controller.h"
#include "server/handler.h"
#include "server/metrics.h"
#include "server/shared_service.h"

namespace distill::server {
namespace {

namespace fs = std::filesystem;

// A client that sends half a request is dropped after this long; it holds
// only its own thread meanwhile.
constexpr int kClientTimeoutMs = 60000;
constexpr auto kListenTimeout = std::chrono::seconds(10);

void say(const std::string& message) { std::cerr << "distilld serve: " << message << std::endl; }

// Thrift's own diagnostics, minus the chatter of clients that hang up
// (every distillctl does, and a broken pipe there is no news).
void thrift_says(const char* message) {
  const std::string text = message;
  for (const char* routine : {"Broken pipe", "Connection reset", "No more data to read", "ECONNRESET", "EPIPE"})
    if (text.find(routine) != std::string::npos) return;
  say("thrift: " + text);
}

// A threaded Thrift server on one server socket; a client that sends half
// a request holds only its own thread until the timeout drops it.
class Listener {
 public:
  // `where` names the address in messages; `socket_file` (UNIX sockets) is
  // removed when the listener stops.
  Listener(std::shared_ptr<apache::thrift::transport::TServerSocket> socket,
           std::shared_ptr<apache::thrift::TProcessorFactory> processors, std::string where,
           fs::path socket_file = {})
      : where_(std::move(where)), socket_file_(std::move(socket_file)) {
    socket->setRecvTimeout(kClientTimeoutMs);
    socket->setSendTimeout(kClientTimeoutMs);
    auto started = std::make_shared<std::promise<std::string>>();  // "" when listening, else why not
    auto once = std::make_shared<std::once_flag>();
    std::future<std::string> outcome = started->get_future();
    socket->setListenCallback([this, started, once](THRIFT_SOCKET) {
      if (!socket_file_.empty()) ::chmod(socket_file_.c_str(), S_IRUSR | S_IWUSR);
      std::call_once(*once, [&] { started->set_value(""); });
    });
    server_ = std::make_unique<apache::thrift::server::TThreadedServer>(
        processors, socket, rpc::framed_transport_factory(), rpc::binary_protocol_factory());
    thread_ = std::thread([this, started, once] {
      try {
        server_->serve();
      } catch (const std::exception& e) {
        bool first = false;
        std::call_once(*once, [&] {
          started->set_value(e.what());
          first = true;
        });
        if (first) return;  // the constructor reports it
        say(where_ + " failed: " + e.what());
        ::kill(::getpid(), SIGTERM);
      }
    });
    std::string why = outcome.wait_for(kListenTimeout) == std::future_status::ready ? outcome.get() : "timed out";
    if (!why.empty()) {
      stop();
      throw std::runtime_error("cannot listen on " + where_ + ": " + why);
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
    if (!socket_file_.empty()) fs::remove(socket_file_, ec);
  }
  const std::string where_;
  const fs::path socket_file_;
  std::unique_ptr<apache::thrift::server::TThreadedServer> server_;
  std::thread thread_;
};

// A UNIX socket created mode 0600 (under a umask of 0177, so it is never
// open to others, even for a moment): the file mode is the access control.
std::unique_ptr<Listener> listen_unix(const fs::path& path, std::shared_ptr<apache::thrift::TProcessor> processor) {
  std::error_code ec;
  fs::remove(path, ec);
  struct RestoreMask {
    mode_t old = ::umask(0177);
    ~RestoreMask() { ::umask(old); }
  } mask;
  return std::make_unique<Listener>(std::make_shared<apache::thrift::transport::TServerSocket>(path.string()),
                                    std::make_shared<apache::thrift::TSingletonProcessorFactory>(processor),
                                    path.string(), path);
}

// "HOST:PORT" -> its parts; throws std::runtime_error on anything else.
std::pair<std::string, int> host_and_port(const std::string& address) {
  const auto colon = address.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon > 0) {
    try {
      std::size_t used = 0;
      port = std::stoi(address.substr(colon + 1), &used);
      if (used != address.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (port < 0 || port > 65535) throw std::runtime_error("--tcp wants HOST:PORT (e.g. 127.0.0.1:7420), not " + address);
  return {address.substr(0, colon), port};
}

// The daemon's token: the first line of `file`, made (64 random hex digits,
// mode 0600) when the file does not exist. Refused when others may read it.
std::string load_token(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    std::ifstream random("/dev/urandom", std::ios::binary);
    unsigned char bytes[32];
    if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes)) throw std::runtime_error("cannot read /dev/urandom");
    std::string token;
    static const char* const kHex = "0123456789abcdef";
    for (unsigned char b : bytes) {
      token += kHex[b >> 4];
      token += kHex[b & 15];
    }
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) throw std::runtime_error("cannot create the token file " + file.string() + ": " + std::strerror(errno));
    const std::string line = token + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!written) throw std::runtime_error("cannot write the token file " + file.string());
    return token;
  }
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0) throw std::runtime_error("cannot read the token file " + file.string());
  if (info.st_mode & (S_IRWXG | S_IRWXO))
    throw std::runtime_error("the token file " + file.string() + " may be read by others: chmod 600 " + file.string());
  std::ifstream in(file);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.size() < 32)
    throw std::runtime_error("the token file " + file.string() + " holds no token of at least 32 characters");
  return token;
}

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
  apache::thrift::GlobalOutput.setOutputFunction(thrift_says);

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
  std::unique_ptr<Listener> tcp;
  std::unique_ptr<MetricsServer> metrics;
  try {
    auto shared_service = std::make_shared<SharedService>(state_dir / "shared");
    shared = listen_unix(shared_socket_path, std::make_shared<rpc::SharedStateProcessor>(shared_service));
    control = listen_unix(socket_path, std::make_shared<rpc::DistillProcessor>(std::make_shared<Handler>(*controller)));
    if (!options.tcp.empty()) {
      const auto [host, port] = host_and_port(options.tcp);
      const fs::path token_file = options.token_file.empty() ? state_dir / "token" : options.token_file;
      auto processors = std::make_shared<rpc::DistillProcessorFactory>(
          std::make_shared<TcpHandlerFactory>(*controller, load_token(token_file)));
      tcp = std::make_unique<Listener>(std::make_shared<apache::thrift::transport::TServerSocket>(host, port),
                                       processors, "tcp " + options.tcp);
      say("listening on tcp " + options.tcp + "; clients authenticate with the token in " + token_file.string());
    }
    if (options.metrics_port >= 0) {
      metrics = std::make_unique<MetricsServer>(*controller, options.metrics_port);
      say("metrics on http://127.0.0.1:" + std::to_string(metrics->port()) + "/metrics");
    }
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
  metrics.reset();
  tcp.reset();
  control.reset();  // no more calls; then the workers stop, still reaching the shared store
  controller->shut_down();
  shared.reset();
  say("stopped after " +
      std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count()) + " s");
  return 0;
}

}  // namespace distill::server
