// The runtime side of one pipeline step: its plugin object, its Context,
// and its counters (records in, kept, dropped by reason, errors, busy time,
// the plugin's own counters, gauges and tables).
#pragma once

#include <distill/plugin.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/run_log.h"
#include "spec/pipeline_spec.h"
#include "store/plugin_state.h"
#include "store/runs.h"

namespace distill::engine {

class StepCounters {
 public:
  std::atomic<std::int64_t> in{0};
  std::atomic<std::int64_t> kept{0};
  std::atomic<std::int64_t> dropped{0};
  std::atomic<std::int64_t> errors{0};
  std::atomic<std::int64_t> busy_ns{0};

  // Counts one drop for `reason`; returns how many there were before it.
  std::int64_t count_drop(const std::string& reason);
  std::atomic<std::int64_t>& custom(std::string_view name);
  void set_gauge(std::string_view name, double value);
  void set_table(Table table);
  StepStats snapshot(const std::string& step, const std::string& plugin) const;
  void restore(const StepStats& saved);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t> reasons_;
  std::map<std::string, std::unique_ptr<std::atomic<std::int64_t>>, std::less<>> custom_;
  std::map<std::string, double, std::less<>> gauges_;
  std::map<std::string, Table, std::less<>> tables_;
};

class StepContext;

// What a step's Context reaches back to in its run.
class RunServices {
 public:
  virtual ~RunServices() = default;
  virtual store::Store& store() = 0;
  virtual bool cancelled() const = 0;
  virtual std::vector<StepStats> stats() const = 0;
  virtual void progress(const std::string& step, double done, double total, std::string_view unit) = 0;
  virtual unsigned threads() const = 0;
  virtual RunLog& log() = 0;
  // A namespace of what pipelines share (see RunOptions::open_shared).
  virtual std::unique_ptr<KeyValue> open_shared(std::string_view name) = 0;
  // Context::commit(): makes `step`'s state and the run's counters durable now.
  virtual void commit_step(StepContext& step) = 0;
};

class StepContext : public Context {
 public:
  StepContext(RunServices& run, const spec::StepSpec& spec, RunInfo info, StepCounters& counters);

  const Params& params() const override { return spec_.params; }
  KeyValue& state() override { return state_; }
  KeyValue& shared(std::string_view name) override;
  Logger& log() override { return *logger_; }
  std::atomic<std::int64_t>& counter(std::string_view name) override { return counters_.custom(name); }
  void gauge(std::string_view name, double value) override { counters_.set_gauge(name, value); }
  void table(Table table) override { counters_.set_table(std::move(table)); }
  unsigned threads() const override { return run_.threads(); }
  void commit() override { run_.commit_step(*this); }
  bool cancelled() const override { return run_.cancelled(); }
  void progress(double done, double total, std::string_view unit) override {
    run_.progress(spec_.name, done, total, unit);
  }
  const RunInfo& run() const override { return info_; }
  std::vector<StepStats> stats() const override { return run_.stats(); }

  store::CheckpointedState& checkpointed_state() { return state_; }

 private:
  RunServices& run_;
  const spec::StepSpec& spec_;
  RunInfo info_;
  StepCounters& counters_;
  store::CheckpointedState state_;
  std::unique_ptr<Logger> logger_;
  std::mutex shared_mutex_;
  std::map<std::string, std::unique_ptr<KeyValue>, std::less<>> shared_;
};

struct Step {
  const spec::StepSpec& spec;
  StepCounters counters;
  std::unique_ptr<StepContext> context;
  std::unique_ptr<Source> source;
  std::unique_ptr<Stage> stage;
  std::unique_ptr<Sink> sink;
  unsigned parallelism = 0;  // of the parallel part; 0 = none
  bool async = false;
  std::vector<store::DropSample> pending_samples;  // written at the next checkpoint

  explicit Step(const spec::StepSpec& s) : spec(s) {}
};

}  // namespace distill::engine
