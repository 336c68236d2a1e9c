// distill-teacher: the HTTP side of the local OpenAI-compatible teacher used by
// the demo pipeline, the integration tests and the benchmarks. Command line,
// routes, auth, injected faults (including a reset connection, a body cut off
// after its headers announced all of it, and a body trickled slower than any
// request timeout), the request log and graceful shutdown; every decision is made in teacher_logic and,
// for /v1/files and /v1/batches, in batch_store.
//
// Responses name the model the request asked for (any name is accepted);
// --model is what /v1/models lists.
//
// cpp-httplib serves one connection per worker thread for the connection's
// whole keep-alive life, so --threads bounds the connections served at once
// (further accepted connections wait for a free worker, and --keep-alive-max
// makes busy connections take turns). With --latency-ms the throughput bound
// is threads / latency: give --threads at least the client's concurrency.
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <httplib.h>

#include "batch_store.h"
#include "teacher_logic.h"

namespace {

namespace teacher = distill::teacher;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8089;
  std::string port_file;
  std::string log_path;
  std::uint64_t seed = 1;
  int threads = 8;
  int keep_alive_max = 100;
  int latency_ms = 0;
  int slow_ms = 3000;
  int trickle_ms = 3000;
  std::optional<int> retry_after_ms;
  teacher::FaultRates rates;
  double noise = 0;
  std::string model = "teacher-small";
  std::string api_key;
  teacher::BatchOptions batch;
};

// Appends whole lines with one write(2) each, so a reader sees every line as
// soon as the request is answered (before the response is sent).
class RequestLog {
 public:
  explicit RequestLog(const std::string& path) {
    if (path.empty()) return;
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot open the request log " + path + ": " + std::strerror(errno));
  }
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;
  ~RequestLog() {
    if (fd_ >= 0) ::close(fd_);
  }

  void append(const teacher::LogEntry& entry) {
    if (fd_ < 0) return;
    const std::string line = teacher::log_line(entry);
    const std::lock_guard lock(mutex_);
    std::size_t done = 0;
    while (done < line.size()) {
      const ssize_t wrote = ::write(fd_, line.data() + done, line.size() - done);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) {
        std::fprintf(stderr, "distill-teacher: writing the request log failed: %s\n", std::strerror(errno));
        return;
      }
      done += static_cast<std::size_t>(wrote);
    }
  }

 private:
  int fd_ = -1;
  std::mutex mutex_;
};

// httplib listens with a backlog of 5; a client that opens hundreds of
// connections at once would wait for SYN retransmits.
class Server : public httplib::Server {
 public:
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

std::string numeric_host(const sockaddr_storage& address, socklen_t length) {
  char host[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host, sizeof host, nullptr, 0,
                  NI_NUMERICHOST) != 0) {
    return {};
  }
  return host;
}

int port_of(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  return -1;
}

// Calls visit(fd, peer, peer_length) for each connected socket of this
// process until it returns true; returns that descriptor, or -1.
template <class Visit>
int find_connected_socket(Visit visit) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == ::dirfd(dir)) continue;
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    if (::getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) continue;
    if (visit(static_cast<int>(fd), peer, peer_length)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(dir);
  return found;
}

// httplib does not hand the socket to handlers: find it among this process's
// descriptors by the connection's two endpoints, which identify it uniquely
// while its handler runs.
int connection_fd(const httplib::Request& req) {
  return find_connected_socket([&req](int fd, const sockaddr_storage& peer, socklen_t peer_length) {
    if (port_of(peer) != req.remote_port || numeric_host(peer, peer_length) != req.remote_addr) return false;
    sockaddr_storage local{};
    socklen_t local_length = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) return false;
    return port_of(local) == req.local_port && numeric_host(local, local_length) == req.local_addr;
  });
}

// After stop(): an idle keep-alive connection would hold its worker (and so
// the exit) for up to the keep-alive timeout; shutting down its read side
// wakes it at once. Only once no response is pending: httplib takes a socket
// whose read side is shut for dead and would not write the response.
void end_idle_connections() {
  find_connected_socket([](int fd, const sockaddr_storage&, socklen_t) {
    ::shutdown(fd, SHUT_RD);
    return false;
  });
}

// Aborts the request's connection with a TCP RST and no response. SO_LINGER 0
// makes the close abortive; dup2 closes the connection and puts an unconnected
// socket under the same descriptor number in one step, so httplib's pending
// write fails harmlessly and its close() closes the placeholder, and the
// number is never free for another connection to take meanwhile.
bool reset_connection(const httplib::Request& req) {
  const int fd = connection_fd(req);
  if (fd < 0) return false;
  const linger abortive{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
  const int placeholder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (placeholder < 0) return false;
  const bool ok = ::dup2(placeholder, fd) == fd;
  ::close(placeholder);
  return ok;
}

std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void sleep_ms(int ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Compares without an early exit, so timing does not reveal how much of a key matched.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

class Teacher {
 public:
  Teacher(const Options& options, RequestLog& log)
      : options_(options),
        log_(log),
        started_(std::time(nullptr)),
        batches_(options.batch, [&log](const teacher::LogEntry& entry) { log.append(entry); }) {}

  void install(Server& server) {
    server.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) { models(req, res); });
    server.Post("/v1/chat/completions",
                [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
    install_batch_api(server);
    server.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          std::string message = "The request failed with HTTP status " + std::to_string(res.status) + ".";
          if (res.status == 404) message = "Invalid URL (" + req.method + " " + req.path + ")";
          if (res.status == 413) message = "The request body is too large.";
          res.set_content(teacher::error_body(message, "invalid_request_error", std::nullopt, std::nullopt),
                          "application/json");
          return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
      if (!res.has_header("x-request-id")) res.set_header("x-request-id", request_id(next_sequence()));
    });
    // A request counts as in flight from routing until its response is
    // written (the logger runs after the write), on the worker's thread.
    server.set_pre_routing_handler([this](const httplib::Request&, httplib::Response&) {
      counted_ = true;
      in_flight_.fetch_add(1);
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server.set_logger([this](const httplib::Request&, const httplib::Response&) {
      if (!counted_) return;
      counted_ = false;
      in_flight_.fetch_sub(1);
    });
  }

  // Waits until every routed request has its response written, or until deadline.
  void wait_for_answers(std::chrono::steady_clock::time_point deadline) const {
    while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) sleep_ms(5);
  }

 private:
  std::uint64_t next_sequence() { return sequence_.fetch_add(1, std::memory_order_relaxed) + 1; }
  static std::string request_id(std::uint64_t sequence) { return "req_" + std::to_string(sequence); }

  static void json(httplib::Response& res, int status, const std::string& body) {
    res.status = status;
    res.set_content(body, "application/json");
  }

  // True when no key is configured or the request carries it; else a 401.
  bool authorized(const httplib::Request& req, httplib::Response& res) const {
    if (options_.api_key.empty()) return true;
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (header.empty()) {
      json(res, 401,
           teacher::error_body("You didn't provide an API key. You need to provide your API key in an Authorization "
                               "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                               "invalid_request_error", std::nullopt, std::nullopt));
      return false;
    }
    if (header.compare(0, kBearer.size(), kBearer) == 0 &&
        same_secret(std::string_view(header).substr(kBearer.size()), options_.api_key)) {
      return true;
    }
    json(res, 401,
         teacher::error_body("Incorrect API key provided.", "invalid_request_error", std::nullopt,
                             std::string("invalid_api_key")));
    return false;
  }

  void models(const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    json(res, 200, teacher::models_body(options_.model, started_));
  }

  void chat(const httplib::Request& req, httplib::Response& res) {
    const std::uint64_t sequence = next_sequence();
    teacher::LogEntry entry;
    entry.request_id = request_id(sequence);
    res.set_header("x-request-id", entry.request_id);
    answer_chat(req, res, sequence, entry);
    entry.status = res.status;
    entry.t_ms = unix_ms();
    log_.append(entry);
  }

  // Fills res (status 0: the connection was reset) and the log entry's fields.
  void answer_chat(const httplib::Request& req, httplib::Response& res, std::uint64_t sequence,
                   teacher::LogEntry& entry) {
    if (!authorized(req, res)) return;
    auto parsed = teacher::parse_chat_request(req.body);
    if (const auto* error = std::get_if<teacher::RequestError>(&parsed)) {
      json(res, 400, teacher::error_body(error->message, "invalid_request_error", error->param, std::nullopt));
      return;
    }
    const teacher::ChatRequest& request = std::get<teacher::ChatRequest>(parsed);
    const std::uint64_t hash = teacher::prompt_hash(request.messages);
    entry.model = request.model;
    entry.prompt_sha = teacher::hex64(hash);
    entry.n = request.n;
    entry.fault = teacher::draw_fault(options_.rates, options_.seed, sequence);
    sleep_ms(options_.latency_ms);

    switch (entry.fault) {
      case teacher::Fault::rate_limit: {
        int seconds = 1;
        std::string wait = "1s";
        if (options_.retry_after_ms) {
          seconds = (*options_.retry_after_ms + 999) / 1000;
          wait = std::to_string(*options_.retry_after_ms) + "ms";
          res.set_header("retry-after-ms", std::to_string(*options_.retry_after_ms));
        }
        res.set_header("Retry-After", std::to_string(seconds));
        json(res, 429,
             teacher::error_body("Rate limit reached for requests on " + request.model + ". Please try again in " +
                                     wait + ".",
                                 "requests", std::nullopt, std::string("rate_limit_exceeded")));
        return;
      }
      case teacher::Fault::server_error:
        json(res, 500, teacher::server_error_body());
        return;
      case teacher::Fault::reset:
        if (reset_connection(req)) {
          res.status = 0;
          return;
        }
        json(res, 500,
             teacher::error_body("The connection could not be reset; answering with an error instead.",
                                 "server_error", std::nullopt, std::nullopt));
        return;
      case teacher::Fault::slow: sleep_ms(options_.slow_ms); break;
      case teacher::Fault::none:
      case teacher::Fault::malformed:
      case teacher::Fault::half_sent:
      case teacher::Fault::trickle: break;
    }

    const teacher::Answer answer = teacher::answer(request.messages, hash, options_.noise);
    entry.noise = answer.noise;
    std::string body = teacher::completion_body(request, answer, hash, std::time(nullptr));
    res.status = 200;
    if (entry.fault == teacher::Fault::half_sent) {
      half_sent(res, std::move(body));
    } else if (entry.fault == teacher::Fault::trickle) {
      trickled(res, std::move(body));
    } else {
      json(res, 200, entry.fault == teacher::Fault::malformed ? teacher::malformed_body(body) : body);
    }
  }

  // A 200 whose Content-Length announces the whole body, then only its first
  // half and a closed connection (the provider's false makes httplib close it).
  static void half_sent(httplib::Response& res, std::string body) {
    const std::size_t length = body.size();
    res.set_content_provider(
        length, "application/json",
        [body = std::move(body)](std::size_t offset, std::size_t, httplib::DataSink& sink) {
          const std::size_t sent = teacher::half_sent_bytes(body.size());
          if (offset < sent) sink.write(body.data() + offset, sent - offset);
          return false;
        });
  }

  // A 200 whose body comes a few bytes at a time, each piece after a short
  // pause, the whole over --trickle-ms; it stops once the client has gone.
  void trickled(httplib::Response& res, std::string body) const {
    const std::size_t length = body.size();
    const teacher::Trickle plan = teacher::trickle(length, options_.trickle_ms);
    res.set_content_provider(
        length, "application/json",
        [body = std::move(body), plan](std::size_t offset, std::size_t left, httplib::DataSink& sink) {
          sleep_ms(plan.pause_ms);
          return sink.write(body.data() + offset, std::min(plan.piece_bytes, left));
        });
  }

  // /v1/files (upload, content) and /v1/batches (create, retrieve, list,
  // cancel). --latency-ms delays each answer after the call is logged, so a
  // test that watches the log can act while the client waits for it.
  // --rate-429 refuses a share of the calls before they act; --rate-500
  // answers a share with 500 after they acted (a created batch stays
  // created), the case a client must not answer by acting twice. Both
  // are logged (after the acting call's own line).
  void install_batch_api(Server& server) {
    const auto route = [this](std::string api, auto handler) {
      return [this, api, handler](const httplib::Request& req, httplib::Response& res) {
        if (!authorized(req, res)) return;
        const teacher::FaultRates rates{options_.rates.rate_429, options_.rates.rate_500, 0, 0, 0, 0, 0};
        const teacher::Fault fault = teacher::draw_fault(rates, options_.seed, next_sequence());
        const auto log_fault = [this, &api](int status) {
          teacher::LogEntry entry;
          entry.t_ms = unix_ms();
          entry.status = status;
          entry.api = api;
          log_.append(entry);
        };
        if (fault == teacher::Fault::rate_limit) {
          log_fault(429);
          res.set_header("Retry-After", "1");
          json(res, 429, teacher::error_body("Rate limit reached for requests. Please try again in 1s.", "requests",
                                             std::nullopt, std::string("rate_limit_exceeded")));
          return;
        }
        const teacher::Reply reply = handler(req);
        sleep_ms(options_.latency_ms);
        if (fault == teacher::Fault::server_error) {
          log_fault(500);
          json(res, 500, teacher::server_error_body());
          return;
        }
        json(res, reply.status, reply.body);
      };
    };
    server.Post("/v1/files", route("POST /v1/files", [this](const httplib::Request& req) {
      if (!req.is_multipart_form_data() || !req.has_file("file"))
        return teacher::Reply{400, teacher::error_body("Expected a multipart form with 'purpose' and 'file'.",
                                                       "invalid_request_error", std::string("file"), std::nullopt)};
      const httplib::MultipartFormData file = req.get_file_value("file");
      const std::string purpose = req.has_file("purpose") ? req.get_file_value("purpose").content : "";
      return batches_.upload(purpose, file.filename, file.content);
    }));
    server.Get(R"(/v1/files/([^/]+)/content)",
               route("GET /v1/files/content",
                     [this](const httplib::Request& req) { return batches_.file_content(req.matches[1]); }));
    server.Post("/v1/batches",
                route("POST /v1/batches", [this](const httplib::Request& req) { return batches_.create(req.body); }));
    server.Get("/v1/batches", route("GET /v1/batches", [this](const httplib::Request& req) {
      std::optional<std::string> after;
      if (req.has_param("after")) after = req.get_param_value("after");
      int limit = 20;
      try {
        if (req.has_param("limit")) limit = std::clamp(std::stoi(req.get_param_value("limit")), 1, 100);
      } catch (const std::exception&) {
        return teacher::Reply{400, teacher::error_body("limit must be a number.", "invalid_request_error",
                                                       std::string("limit"), std::nullopt)};
      }
      return batches_.list(after, limit);
    }));
    server.Get(R"(/v1/batches/([^/]+))",
               route("GET /v1/batches/{id}",
                     [this](const httplib::Request& req) { return batches_.retrieve(req.matches[1]); }));
    server.Post(R"(/v1/batches/([^/]+)/cancel)",
                route("POST /v1/batches/{id}/cancel",
                      [this](const httplib::Request& req) { return batches_.cancel(req.matches[1]); }));
  }

  const Options& options_;
  RequestLog& log_;
  const std::int64_t started_;
  teacher::BatchStore batches_;
  std::atomic<std::uint64_t> sequence_{0};
  std::atomic<int> in_flight_{0};
  static thread_local bool counted_;
};

thread_local bool Teacher::counted_ = false;

// Written to a temporary file and renamed, so a reader never sees a partial number.
void write_port_file(const std::string& path, int port) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << '\n';
    if (!out.flush()) throw std::runtime_error("cannot write the port file " + temporary);
  }
  std::filesystem::rename(temporary, path);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"distill-teacher: a local OpenAI-compatible teacher that spells numbers digit by digit, "
               "with optional noise and injected faults."};
  const auto integer = [&app](const std::string& name, int& value, int lo, int hi, const std::string& what) {
    app.add_option(name, value, what)->check(CLI::Range(lo, hi))->capture_default_str();
  };
  const auto rate = [&app](const std::string& name, double& value, const std::string& what) {
    app.add_option(name, value, what)->check(CLI::Range(0.0, 1.0))->capture_default_str();
  };
  app.add_option("--host", options.host, "Address to listen on")->capture_default_str();
  integer("--port", options.port, 0, 65535, "Port to listen on; 0 picks a free one");
  app.add_option("--port-file", options.port_file, "Write the bound port to this file once listening");
  app.add_option("--log", options.log_path, "Append one JSON line per chat-completions request answered");
  app.add_option("--model", options.model, "Model id listed by /v1/models")->capture_default_str();
  app.add_option("--api-key", options.api_key, "Require 'Authorization: Bearer KEY'");
  app.add_option("--seed", options.seed, "Seed of the fault draws")->capture_default_str();
  integer("--threads", options.threads, 1, 4096, "Worker threads (connections served at once)");
  integer("--keep-alive-max", options.keep_alive_max, 1, 1000000,
          "Requests per connection before the server closes it");
  integer("--latency-ms", options.latency_ms, 0, 3600000,
          "Added latency per chat-completions request and per Files or Batch API call");
  integer("--slow-ms", options.slow_ms, 0, 3600000, "Extra delay of a 'slow' fault");
  integer("--trickle-ms", options.trickle_ms, 0, 3600000,
          "Time a 'trickle' fault takes to send its body, 8 bytes at a time with equal short pauses");
  app.add_option("--retry-after-ms", options.retry_after_ms,
                 "On 429 also send 'retry-after-ms: N' (Retry-After becomes ceil(N/1000) s); default Retry-After: 1")
      ->check(CLI::Range(0, 3600000));
  rate("--rate-429", options.rates.rate_429,
       "Share of requests answered 429 with Retry-After (Files and Batch API calls too, before they act)");
  rate("--rate-500", options.rates.rate_500,
       "Share of requests answered 500 (Files and Batch API calls too, after they acted)");
  rate("--rate-slow", options.rates.slow, "Share of requests delayed by --slow-ms, then answered");
  rate("--rate-malformed", options.rates.malformed, "Share of requests answered 200 with a cut-off JSON body");
  rate("--rate-reset", options.rates.reset, "Share of requests whose connection is reset without a response");
  rate("--rate-half-sent", options.rates.half_sent,
       "Share of requests answered 200 with the whole body's Content-Length, closed after half of the body");
  rate("--rate-trickle", options.rates.trickle,
       "Share of requests answered 200 with the body trickled over --trickle-ms");
  rate("--noise", options.noise, "Share of prompts with a noisy answer (decided by the prompt's hash)");
  integer("--batch-delay-ms", options.batch.delay_ms, 0, 86400000,
          "Time from a batch's creation to its completion (validating for the first tenth)");
  rate("--batch-fail-rate", options.batch.line_failure_rate, "Share of batch lines answered with HTTP 500 (error file)");
  integer("--batch-expire-first", options.batch.expire_first, 0, 1000000,
          "The first N batches expire with only the first half of their lines answered");
  integer("--batch-malformed-output", options.batch.malformed_output_downloads, 0, 1000000,
          "The first N downloads of batch output files are cut off (not valid JSONL)");
  CLI11_PARSE(app, argc, argv);
  options.batch.seed = options.seed;
  options.batch.noise = options.noise;

  if (const std::string problem = teacher::check_fault_rates(options.rates); !problem.empty()) {
    std::fprintf(stderr, "distill-teacher: %s\n", problem.c_str());
    return 2;
  }

  // Block SIGINT and SIGTERM before any thread starts: only the waiter below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    RequestLog log(options.log_path);
    Teacher teacher(options, log);
    Server server;
    const int threads = options.threads;
    server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    server.set_tcp_nodelay(true);
    // httplib's default adds SO_REUSEPORT, which would let a second teacher
    // bind the same port and silently take half the requests.
    server.set_socket_options([](socket_t sock) {
      const int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server.set_keep_alive_max_count(static_cast<std::size_t>(options.keep_alive_max));
    server.set_payload_max_length(16u << 20);
    teacher.install(server);

    int port = options.port;
    if (port == 0) {
      port = server.bind_to_any_port(options.host);
    } else if (!server.bind_to_port(options.host, port)) {
      port = -1;
    }
    if (port < 0) {
      std::fprintf(stderr, "distill-teacher: cannot listen on %s:%d (address in use?)\n", options.host.c_str(),
                   options.port);
      return 1;
    }
    server.widen_backlog();
    if (!options.port_file.empty()) write_port_file(options.port_file, port);

    std::atomic<bool> stopping{false};
    std::thread waiter([&] {
      int signal_number = 0;
      sigwait(&stop_signals, &signal_number);
      stopping = true;
      server.stop();
      // Requests already being answered finish (a slow or trickled fault included); then idle connections close.
      const int longest_ms = options.latency_ms + std::max(options.slow_ms, options.trickle_ms) + 2000;
      teacher.wait_for_answers(std::chrono::steady_clock::now() + std::chrono::milliseconds(longest_ms));
      end_idle_connections();
    });
    std::fprintf(stderr, "distill-teacher listening on %s:%d\n", options.host.c_str(), port);
    const bool ok = server.listen_after_bind();
    const bool signalled = stopping;
    if (!signalled) pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    return ok || signalled ? 0 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "distill-teacher: %s\n", error.what());
    return 1;
  }
}
