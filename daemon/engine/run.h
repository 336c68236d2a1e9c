// One execution of a pipeline: starts a new run or resumes an interrupted
// one from its checkpoint, drives the TBB flow graph segment by segment
// (a checkpoint between segments), and reports live counters. A library
// type: `distilld run` and the daemon are thin front ends over it.
#pragma once

#include <distill/plugin.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/run_log.h"
#include "spec/pipeline_spec.h"
#include "store/runs.h"
#include "store/store.h"

namespace distill::engine {

struct RunOptions {
  // Start a new run even though the last one completed (its input is then
  // deduped against earlier runs), or abandon an interrupted run. Without
  // it an interrupted run resumes and a completed run is left as it is.
  bool new_run = false;
  // The most threads this run may use, e.g. the daemon's share of its
  // thread budget; 0: the pipeline's engine.threads. The run works in a
  // task arena of its own and changes no process-wide TBB setting: TBB
  // caps its workers at the core count unless the front end that hosts the
  // runs raises tbb::global_control::max_allowed_parallelism once.
  unsigned max_threads = 0;
  // Opens a namespace of what pipelines share (Context::shared()). Unset:
  // the namespaces live in the run's own store. The daemon's workers reach
  // the daemon's shared store instead, so that pipelines share them.
  std::function<std::unique_ptr<KeyValue>(std::string_view name)> open_shared = nullptr;
};

struct RunSnapshot {
  std::string pipeline;
  std::uint64_t run = 0;
  store::RunStatus status = store::RunStatus::Running;
  bool resumed = false;
  bool already_completed = false;  // nothing ran: the run had completed before
  // The run could not begin (e.g. its pipeline changed since it was
  // interrupted): `error` says why and what to do; nothing was written.
  bool refused = false;
  std::string error;
  std::int64_t records_read = 0;       // by the run, across resumptions
  std::int64_t records_read_here = 0;  // by this execute()
  std::uint64_t bytes_read_here = 0;   // by this execute(), as the source counts them
  SourceProgress source_progress;
  std::vector<StepStats> steps;  // source, stages, sinks in pipeline order
  std::size_t inflight_batches = 0;
  std::size_t max_inflight_batches_seen = 0;  // includes the one batch the reader holds
  std::int64_t checkpoints = 0;
  double elapsed_s = 0;
  // Set while a sink's finish() reports progress.
  std::string finishing_step;
  double finish_done = 0;
  double finish_total = 0;
  std::string finish_unit;
};

// What stops a run from beginning; execute() turns it into a refused run.
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Run {
 public:
  Run(store::Store& store, const spec::PipelineSpec& spec, RunOptions options = {});
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // Runs until the input is exhausted and the sinks have finished, until
  // stop(), or until a step fails. Returns the final status; a failure's
  // message is in snapshot().error, and a run that could not begin is
  // Failed with snapshot().refused set. Never throws, so it may run on any
  // thread. A Run executes once: a second call does nothing and returns
  // Failed (resuming takes a new Run).
  store::RunStatus execute();
  // Thread-safe: ends the current segment, commits a checkpoint, and makes
  // execute() return Stopped. The run resumes on the next execute().
  void stop();
  // Thread-safe.
  RunSnapshot snapshot() const;
  // Thread-safe: the run's log lines after `after_seq` (see RunLog).
  std::vector<LogLine> log_since(std::uint64_t after_seq,
                                 std::size_t limit = std::numeric_limits<std::size_t>::max()) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distill::engine
