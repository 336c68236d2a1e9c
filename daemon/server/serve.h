// `distilld serve`: the daemon's process. Owns the state folder, the
// control socket (<state>/control.sock, mode 0600), the Thrift server and
// the signals: SIGTERM/SIGINT shut down within the grace period, SIGHUP
// rescans the plugin folders.
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
};

// Returns the process's exit code: 0 after a clean shutdown, 1 when the
// daemon could not start (the message is on stderr).
int serve(const ServeOptions& options);

}  // namespace distill::server
