// The plugin author's surface: the three stage kinds (Source, Stage, Sink),
// the Batch they exchange, the Context each instance gets, and the
// DISTILL_PLUGIN macro that exports a plugin's descriptor.
//
// Each kind has an optional *parallel part* that the engine may run on
// several batches at once (it must touch no shared state), and a *serial
// part* that sees batches one at a time in source order. Keeping shared
// state in the serial part makes the output the same byte for byte at any
// thread count.
#pragma once

#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <distill/params.h>
#include <distill/record.h>
#include <distill/version.h>

namespace distill {

// One record in a batch and, once a step has dropped it, why.
struct Slot {
  Record record;
  std::string drop_reason;  // empty while the record is live
  std::string dropped_by;   // the step that dropped it; set by the engine
  bool live() const { return drop_reason.empty(); }
};

// Records move in batches of `batch_size`. A dropped record keeps its slot
// (later steps skip it) so the engine can account for it. A step may add
// slots (one prompt, several answers) but not remove or reorder them.
struct Batch {
  std::vector<Slot> slots;
  // Scratch space owned by the current step between its parallel and serial
  // parts (e.g. hashes computed in parallel, looked up serially). The engine
  // clears it before the next step.
  std::any scratch;

  template <class F>
  void for_each_live(F&& visit) {
    for (Slot& slot : slots)
      if (slot.live()) visit(slot);
  }
};

// A stage's decision about one record.
class Verdict {
 public:
  static Verdict keep() { return Verdict(); }
  static Verdict drop(std::string reason) { return Verdict(std::move(reason)); }
  bool kept() const { return reason_.empty(); }
  const std::string& reason() const { return reason_; }

 private:
  Verdict() = default;
  explicit Verdict(std::string reason) : reason_(reason.empty() ? "dropped" : std::move(reason)) {}
  std::string reason_;
};

// A key-value namespace persisted in the daemon's RocksDB.
class KeyValue {
 public:
  virtual ~KeyValue() = default;
  virtual std::optional<std::string> get(std::string_view key) = 0;
  virtual void put(std::string_view key, std::string_view value) = 0;
  virtual void erase(std::string_view key) = 0;
  // Visits keys that start with `prefix` in byte order until `visit` returns false.
  virtual void scan(std::string_view prefix,
                    const std::function<bool(std::string_view key, std::string_view value)>& visit) = 0;
};

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void info(std::string_view message) = 0;
  virtual void warn(std::string_view message) = 0;
  virtual void error(std::string_view message) = 0;
};

// A table a plugin shows under its step in status (e.g. a teacher's Batch
// API batches): column headings, and rows of cells as the plugin formats
// them, one cell per column.
struct Table {
  std::string name;  // e.g. "batches"
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

// Counters of one step, as the engine keeps them.
struct StepStats {
  std::string step;    // instance id, e.g. "source", "exact_dedupe"
  std::string plugin;
  std::int64_t records_in = 0;
  std::int64_t kept = 0;
  std::int64_t dropped = 0;
  std::int64_t errors = 0;
  std::int64_t busy_ns = 0;  // time spent in the step's code (varies run to run)
  std::vector<std::pair<std::string, std::int64_t>> drops_by_reason;  // sorted by reason
  std::vector<std::pair<std::string, std::int64_t>> counters;         // the plugin's own, sorted by name
  std::vector<std::pair<std::string, double>> gauges;                 // the plugin's latest values, sorted by name
  std::vector<Table> tables;                                          // the plugin's latest tables, sorted by name
};

struct RunInfo {
  std::string pipeline;
  std::uint64_t run = 0;    // 1, 2, ... per pipeline; a resumed run keeps its number
  std::string instance;     // this plugin instance's id in the pipeline
  bool resumed = false;     // true when this process continues an interrupted run
};

// What the engine gives each plugin instance.
class Context {
 public:
  virtual ~Context() = default;
  virtual const Params& params() const = 0;
  // The instance's own state. Writes become durable at the next checkpoint,
  // atomically with the source position they belong to; after a crash the
  // state is as of the last checkpoint. Until then they are held in memory
  // (an overwrite reuses the key's room when the new value fits), so keep
  // what is written per record small. Use it from serial parts only.
  virtual KeyValue& state() = 0;
  // A namespace shared by every pipeline of the daemon (e.g. a response
  // cache). Writes are durable at once and not rolled back. Thread-safe.
  virtual KeyValue& shared(std::string_view name) = 0;
  virtual Logger& log() = 0;
  // A named counter of this instance, shown in status and persisted with checkpoints.
  virtual std::atomic<std::int64_t>& counter(std::string_view name) = 0;
  // A named gauge of this instance (a loss, a learning rate, tokens/s): its
  // latest value is shown in status and persisted with checkpoints. Thread-safe.
  virtual void gauge(std::string_view name, double value) = 0;
  // A named table of this instance (e.g. the batches a teacher waits for):
  // each call replaces the table of that name whole; the latest is shown in
  // status and persisted with checkpoints. A row with more or fewer cells
  // than columns throws std::invalid_argument. Thread-safe.
  virtual void table(Table table) = 0;
  // Threads this instance may use for work of its own (e.g. a trainer's
  // math library): the pipeline's engine.threads, or the daemon's share of
  // its thread budget for this run.
  virtual unsigned threads() const = 0;
  // From a sink's finish() only: makes this instance's state writes, counters
  // and gauges durable now, in one atomic write, so that a crash during a
  // long finish() resumes from this point instead of its beginning.
  // Anywhere else state becomes durable with the checkpoints, and commit()
  // throws std::logic_error.
  virtual void commit() = 0;
  // True once the run is stopping; long loops should return early.
  virtual bool cancelled() const = 0;
  // Progress of long work (a sink's finish()), e.g. progress(3, 10, "epochs").
  virtual void progress(double done, double total, std::string_view unit) = 0;
  virtual const RunInfo& run() const = 0;
  // Counters of every step so far (for manifests and summaries).
  virtual std::vector<StepStats> stats() const = 0;
};

struct SourceProgress {
  std::uint64_t done = 0;   // bytes (or items) read so far
  std::uint64_t total = 0;  // 0 = unknown
};

// Yields records and can resume from a position.
class Source {
 public:
  virtual ~Source() = default;
  // Serial: appends up to `max` slots to `batch` (a malformed input item may
  // be appended already dropped, as a dead letter). Returns false when the
  // input is exhausted and nothing was appended.
  virtual bool next(Batch& batch, std::size_t max) = 0;
  // Parallel part (optional): finishes the records `next` appended, e.g.
  // parses raw lines left in `batch.scratch`.
  virtual void decode(Batch& batch) { (void)batch; }
  virtual unsigned decode_parallelism() const { return 0; }  // 0: decode() runs serially
  // The position just after the last record returned by next(); opaque.
  virtual std::string position() const = 0;
  // Continue from a position returned earlier by position().
  virtual void seek(std::string_view position) = 0;
  virtual SourceProgress progress() const { return {}; }
};

// Looks at each record: keeps it (perhaps rewritten) or drops it with a reason.
class Stage {
 public:
  virtual ~Stage() = default;
  // Serial part, in source order. Override this, or process(Batch&) to see a whole batch.
  virtual Verdict process(Record& record) {
    (void)record;
    throw std::logic_error("this stage overrides neither process(Record&) nor process(Batch&)");
  }
  virtual void process(Batch& batch) {
    batch.for_each_live([this](Slot& slot) {
      Verdict verdict = process(slot.record);
      if (!verdict.kept()) slot.drop_reason = verdict.reason();
    });
  }
  // Parallel part (optional): pure work on a batch before process().
  virtual void prepare(Batch& batch) { (void)batch; }
  // How many batches prepare() may work on at once; 0 runs it serially,
  // just before process(). The same holds for decode() and encode().
  virtual unsigned prepare_parallelism() const { return 0; }
  // Asynchronous part (optional), for stages that wait on I/O: start the
  // work and return at once; call `done` (from any thread, exactly once)
  // when the batch is ready for process(). Up to max_inflight_batches run
  // at once. A stage that returns true here has prepare_async() called
  // instead of prepare().
  virtual bool is_async() const { return false; }
  virtual void prepare_async(Batch& batch, std::function<void()> done) {
    prepare(batch);
    done();
  }
};

// Consumes kept records.
class Sink {
 public:
  virtual ~Sink() = default;
  // Parallel part (optional): e.g. serialise records into batch.scratch.
  virtual void encode(Batch& batch) { (void)batch; }
  virtual unsigned encode_parallelism() const { return 0; }
  // Serial, in source order. Dropped slots are present; most sinks skip them.
  virtual void write(Batch& batch) = 0;
  // At a checkpoint: make everything written so far durable and record in
  // state() what is committed. On construction in a resumed run, discard
  // anything written after the last committed point.
  virtual void flush() = 0;
  // After the last record and the final checkpoint. May take long (report
  // progress, honour cancelled()); must be safe to run again after a crash.
  virtual void finish() {}
};

enum class Kind { Source, Stage, Sink, Command };

inline const char* to_string(Kind kind) {
  switch (kind) {
    case Kind::Source: return "source";
    case Kind::Stage: return "stage";
    case Kind::Sink: return "sink";
    case Kind::Command: return "command";
  }
  return "?";
}

// The arguments after the command's name on distilld's command line; the
// command prints to stdout/stderr and returns the process's exit code.
using CommandFunction = std::function<int(const std::vector<std::string>& args)>;

// One thing a plugin provides: a source, a stage or a sink, with its
// parameters; or a command it adds to distilld's command line.
struct Component {
  Kind kind = Kind::Stage;
  std::vector<ParamSpec> params;
  // Optional checks beyond the declared types (throw ParamError).
  std::function<void(const Params&)> validate;
  std::function<std::unique_ptr<Source>(Context&)> make_source;
  std::function<std::unique_ptr<Stage>(Context&)> make_stage;
  std::function<std::unique_ptr<Sink>(Context&)> make_sink;
  // Kind::Command: `distilld <command_name> ARGS...` runs `run_command`.
  std::string command_name;
  std::string command_usage;  // one line: arguments and what the command does
  CommandFunction run_command;
};

struct PluginInfo {
  std::string name;
  std::string description;
  std::vector<Component> components;
};

// What the exported entry point returns. The first two fields never move,
// so the loader can read the ABI number of any plugin before it trusts the rest.
struct PluginDescriptor {
  std::uint32_t abi;
  const char* sdk_version;
  const PluginInfo* info;
};

namespace detail {
template <class T>
void attach_validate(Component& component) {
  if constexpr (requires(const Params& p) { T::validate(p); })
    component.validate = [](const Params& p) { T::validate(p); };
}
}  // namespace detail

// Component helpers: T is constructed as T(Context&). A static
// `void validate(const Params&)` on T, if present, runs at validation time.
template <class T>
Component source(std::vector<ParamSpec> params) {
  Component c;
  c.kind = Kind::Source;
  c.params = std::move(params);
  c.make_source = [](Context& ctx) -> std::unique_ptr<Source> { return std::make_unique<T>(ctx); };
  detail::attach_validate<T>(c);
  return c;
}
template <class T>
Component stage(std::vector<ParamSpec> params) {
  Component c;
  c.kind = Kind::Stage;
  c.params = std::move(params);
  c.make_stage = [](Context& ctx) -> std::unique_ptr<Stage> { return std::make_unique<T>(ctx); };
  detail::attach_validate<T>(c);
  return c;
}
template <class T>
Component sink(std::vector<ParamSpec> params) {
  Component c;
  c.kind = Kind::Sink;
  c.params = std::move(params);
  c.make_sink = [](Context& ctx) -> std::unique_ptr<Sink> { return std::make_unique<T>(ctx); };
  detail::attach_validate<T>(c);
  return c;
}

// A command the plugin adds to distilld: command("generate", "DIR PROMPT: ...", run).
inline Component command(std::string name, std::string usage, CommandFunction run) {
  Component c;
  c.kind = Kind::Command;
  c.command_name = std::move(name);
  c.command_usage = std::move(usage);
  c.run_command = std::move(run);
  return c;
}

}  // namespace distill

#define DISTILL_PLUGIN_ENTRY distill_plugin_descriptor

// Exports the plugin: DISTILL_PLUGIN("name", "what it does", distill::stage<MyStage>({...}), ...)
#define DISTILL_PLUGIN(NAME, DESCRIPTION, ...)                                               \
  extern "C" __attribute__((visibility("default"))) const ::distill::PluginDescriptor*      \
  DISTILL_PLUGIN_ENTRY() {                                                                   \
    static const ::distill::PluginInfo info{NAME, DESCRIPTION, {__VA_ARGS__}};               \
    static const ::distill::PluginDescriptor descriptor{DISTILL_SDK_ABI, DISTILL_SDK_VERSION, \
                                                        &info};                              \
    return &descriptor;                                                                      \
  }
