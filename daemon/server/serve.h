// `distilld serve`: the daemon's process. Owns the state folder, the
// control socket (<state>/control.sock, mode 0600), the Thrift servers
// (and the opt-in TCP listener, whose clients authenticate with a token),
// the opt-in Prometheus endpoint (metrics.h) and the signals: SIGTERM and
// SIGINT shut down within the grace period, SIGHUP rescans the plugins.
#pragma once

#include <chrono>
#include <filesystem>

namespace distill::server {

struct ServeOptions {
  std::filesystem::path state_dir;
  std::chrono::seconds grace{30};
  unsigned threads = 0;  // the thread budget; 0: the machine's cores
  int max_crashes = 3;
  std::filesystem::path distilld;  // this binary, for the workers
  std::string tcp;                 // "HOST:PORT": also listen on TCP (token authentication); empty: no
  std::filesystem::path token_file;  // the TCP token; empty: <state>/token, made when missing
  int metrics_port = -1;           // the Prometheus endpoint on 127.0.0.1; -1: none, 0: any free port
};

// Returns the process's exit code: 0 after a clean shutdown, 1 when the
// daemon could not start (the message is on stderr).
int serve(const ServeOptions& options);

}  // namespace distill::server
