// The worker process: `distilld run-worker`, started by the daemon for one
// pipeline run (so a plugin that crashes takes only its own process down).
// It runs the pipeline with the engine, reports its status and log lines to
// the daemon over a pipe, stops at the next checkpoint on SIGTERM, and
// stops the same way when the daemon dies.
#pragma once

#include <filesystem>

namespace distill::worker {

struct WorkerOptions {
  std::filesystem::path pipeline_text;  // the submitted revision's text, as the daemon stored it
  std::filesystem::path file;           // where it was submitted from: relative paths start at its folder
  std::filesystem::path state_dir;      // the pipeline's own database
  unsigned threads = 0;                 // the daemon's share of its budget; 0: the pipeline's own
  bool new_run = false;
  // The daemon's shared store (Context::shared()); empty: the pipeline's own store.
  std::string shared_socket;
  int report_fd = 3;
};

// Exit codes: 0 completed, 1 failed or refused, 130 stopped.
int run_worker(const WorkerOptions& options);

}  // namespace distill::worker
