// The engine proper. A run is a sequence of segments; each segment is a
// TBB flow graph that reads up to `checkpoint_every_records` records and
// drains completely, so that when it returns every record read has passed
// every step and sink. Between segments the run commits a checkpoint: the
// source position, every instance's buffered state, counters and drop
// samples, in one RocksDB write.
//
// Graph of a segment, per step: [parallel part] -> sequencer -> serial part.
//   reader -> limiter(max_inflight_batches) -> step 0 -> ... -> step n -> done
// `done` releases a limiter slot, which bounds the batches in memory.
#include "engine/run.h"

#include <distill/content_id.h>
#include <distill/record_json.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

#include <chrono>
#include <mutex>

#include "engine/step.h"
#include "store/plugin_state.h"

namespace distill::engine {
namespace {

using Clock = std::chrono::steady_clock;
using store::RunStatus;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct EngineBatch {
  Batch batch;
  std::uint64_t seq = 0;
};
using BatchPtr = std::shared_ptr<EngineBatch>;
using BatchNode = tbb::flow::function_node<BatchPtr, BatchPtr>;
using AsyncNode = tbb::flow::async_node<BatchPtr, BatchPtr>;

}  // namespace

class Run::Impl : public RunServices {
 public:
  Impl(store::Store& store, const spec::PipelineSpec& spec, RunOptions options)
      : store_(store), spec_(spec), options_(options), runs_(store) {}

  RunStatus execute();
  // Stops at the next checkpoint; asynchronous work in flight (a teacher's
  // requests and their retries) is abandoned back to the last checkpoint
  // instead of waited for (see abandon_segment()).
  void stop() {
    stop_requested_ = true;
    if (async_inflight_ > 0) abandon_ = true;
  }
  std::vector<LogLine> log_since(std::uint64_t after_seq, std::size_t limit) const {
    return log_.since(after_seq, limit);
  }
  RunSnapshot snapshot() const;

  store::Store& store() override { return store_; }
  bool cancelled() const override { return stop_requested_ || failed_; }
  std::vector<StepStats> stats() const override;
  void progress(const std::string& step, double done, double total, std::string_view unit) override {
    std::lock_guard lock(mutex_);
    finishing_step_ = step;
    finish_done_ = done;
    finish_total_ = total;
    finish_unit_ = unit;
  }
  unsigned threads() const override {
    return options_.max_threads ? std::min(options_.max_threads, spec_.engine.threads) : spec_.engine.threads;
  }
  RunLog& log() override { return log_; }
  std::unique_ptr<KeyValue> open_shared(std::string_view name) override {
    if (options_.open_shared) return options_.open_shared(name);
    return std::make_unique<store::SharedNamespace>(store_, store::shared_prefix(name));
  }
  void commit_step(StepContext& context) override;

 private:
  RunStatus run_to_end();
  void abandon_segment();
  void refuse(const std::string& message);
  std::optional<store::Checkpoint> begin();
  void make_steps(const std::optional<store::Checkpoint>& checkpoint);
  void start_plugins(const std::optional<store::Checkpoint>& checkpoint);
  bool run_segment();
  void connect_step(tbb::flow::graph& g, Step& step, tbb::flow::sender<BatchPtr>*& tail,
                    std::vector<std::unique_ptr<tbb::flow::graph_node>>& nodes);
  void run_parallel(Step& step, EngineBatch& batch);
  void start_async(Step& step, const BatchPtr& batch, AsyncNode::gateway_type& gateway);
  void run_serial(Step& step, EngineBatch& batch);
  void account(Step& step, EngineBatch& batch);
  void commit(std::optional<RunStatus> new_status);
  void finish_sinks();
  void end(RunStatus status);
  void fail(const std::string& where, const std::string& message);
  template <class F>
  void guarded(Step& step, const char* what, F&& body);

  store::Store& store_;
  const spec::PipelineSpec& spec_;
  RunOptions options_;
  store::RunStore runs_;
  RunLog log_;
  store::RunMeta meta_;
  std::vector<std::unique_ptr<Step>> steps_;  // [0] is the source, then stages, then sinks
  std::string position_;

  // Written by execute(), read by snapshot() from other threads.
  std::atomic<bool> executed_{false};
  std::atomic<bool> resumed_{false};
  std::atomic<bool> already_completed_{false};
  std::atomic<std::int64_t> started_ns_{0};  // steady clock; 0 until execute()
  std::atomic<bool> ready_{false};     // steps_ and meta_.run have their final shape
  std::atomic<bool> counting_{false};  // records_at_start_ and bytes_at_start_ are set
  std::atomic<std::int64_t> records_at_start_{0};
  std::atomic<std::uint64_t> bytes_at_start_{0};
  std::atomic<bool> finishing_{false};  // the sinks' finish() runs: Context::commit() is allowed
  std::atomic<bool> stop_requested_{false};
  std::atomic<int> async_inflight_{0};  // batches inside a stage's prepare_async()
  std::atomic<bool> abandon_{false};    // the segment's work is not committed: see abandon_segment()
  std::atomic<bool> failed_{false};
  std::atomic<std::int64_t> records_read_{0};
  std::atomic<std::int64_t> checkpoints_{0};
  std::atomic<std::size_t> inflight_{0};
  std::atomic<std::size_t> max_inflight_{0};
  std::atomic<std::uint64_t> progress_done_{0};
  std::atomic<std::uint64_t> progress_total_{0};

  mutable std::mutex mutex_;  // guards the fields below
  RunStatus status_ = RunStatus::Running;
  std::string error_;
  bool refused_ = false;
  std::string finishing_step_;
  double finish_done_ = 0;
  double finish_total_ = 0;
  std::string finish_unit_;
};

RunStatus Run::Impl::execute() {
  if (executed_.exchange(true)) return RunStatus::Failed;
  started_ns_ = Clock::now().time_since_epoch().count();
  std::optional<store::Checkpoint> checkpoint;
  try {
    checkpoint = begin();
    make_steps(checkpoint);
  } catch (const std::exception& e) {
    refuse(e.what());
    return RunStatus::Failed;
  }
  ready_ = true;  // from here on steps_ and meta_.run do not change shape: snapshot() may read them
  if (already_completed_) {
    end(RunStatus::Completed);
    return RunStatus::Completed;
  }
  try {
    start_plugins(checkpoint);
  } catch (const std::exception& e) {
    fail("starting the pipeline", e.what());
  }
  return run_to_end();
}

// A stop while asynchronous work was in flight: waiting for it could take
// minutes (a teacher's retries), and a stage may have given its batches up
// when it saw cancelled(). Nothing since the last checkpoint is committed,
// as after a crash: the next execute() resumes from that checkpoint and
// the sinks discard what they wrote after it (a teacher's answers are in
// its cache already, so asking again is free).
void Run::Impl::abandon_segment() {
  for (auto& step : steps_) {
    if (step->context) step->context->checkpointed_state().discard_pending();
    step->pending_samples.clear();
  }
  log_.add("info", "", "stopped with asynchronous work in flight: it is abandoned, and the run resumes from its last "
                       "checkpoint");
  try {
    meta_.status = RunStatus::Stopped;
    meta_.ended_ms = wall_ms();
    store::WriteSet batch(store_);
    runs_.put_meta(batch, spec_.name, meta_);
    store_.write(batch, true);
  } catch (const std::exception& e) {
    fail("recording the stop", e.what());
    return;
  }
  end(RunStatus::Stopped);
}

void Run::Impl::refuse(const std::string& message) {
  std::lock_guard lock(mutex_);
  error_ = message;
  refused_ = true;
  status_ = RunStatus::Failed;
}

RunStatus Run::Impl::run_to_end() {
  while (!failed_) {
    const bool exhausted = run_segment();
    if (failed_) break;
    if (abandon_) {
      abandon_segment();
      if (failed_) break;
      return RunStatus::Stopped;
    }
    if (!exhausted && !stop_requested_) {
      commit(std::nullopt);
      continue;
    }
    if (exhausted && !stop_requested_) {
      commit(std::nullopt);
      if (!failed_) finish_sinks();
      if (failed_) break;
    }
    // A stop, even one that cut a sink's finish() short, leaves the run
    // resumable: the next execute() reads nothing more and finishes again.
    const RunStatus final_status = stop_requested_ ? RunStatus::Stopped : RunStatus::Completed;
    commit(final_status);
    if (failed_) break;
    end(final_status);
    return final_status;
  }
  for (auto& step : steps_)
    if (step->context) step->context->checkpointed_state().discard_pending();
  log_.add("error", "", snapshot().error);
  try {
    meta_.status = RunStatus::Failed;
    meta_.ended_ms = wall_ms();
    meta_.error = snapshot().error;
    store::WriteSet batch(store_);
    runs_.put_meta(batch, spec_.name, meta_);
    store_.write(batch, true);
  } catch (const std::exception&) {
    // The store itself is failing (e.g. disk full); the run stays
    // "running" on disk and resumes from its last checkpoint next time.
  }
  end(RunStatus::Failed);
  return RunStatus::Failed;
}

std::optional<store::Checkpoint> Run::Impl::begin() {
  std::optional<store::RunMeta> latest = runs_.latest_run(spec_.name);
  store::WriteSet batch(store_);
  std::optional<store::Checkpoint> checkpoint;
  if (latest && latest->status == RunStatus::Completed && !options_.new_run) {
    meta_ = *latest;
    already_completed_ = true;
    return runs_.checkpoint(spec_.name, meta_.run);
  }
  if (latest && latest->status != RunStatus::Completed && !options_.new_run) {
    if (latest->fingerprint != spec_.fingerprint)
      throw RunError("pipeline '" + spec_.name + "' changed since its run " + std::to_string(latest->run) +
                     " was interrupted: resuming under other plugins or parameters would mix two outputs. "
                     "Restore the previous pipeline file to resume run " + std::to_string(latest->run) +
                     ", or start run " + std::to_string(latest->run + 1) + " with --new-run");
    meta_ = *latest;
    resumed_ = true;
    checkpoint = runs_.checkpoint(spec_.name, meta_.run);
  } else {
    if (latest && latest->status != RunStatus::Completed) {
      latest->status = RunStatus::Failed;
      latest->error = "abandoned: run " + std::to_string(latest->run + 1) + " was started with --new-run";
      runs_.put_meta(batch, spec_.name, *latest);
    }
    meta_ = {latest ? latest->run + 1 : 1, RunStatus::Running, spec_.fingerprint, wall_ms(), 0, ""};
  }
  meta_.status = RunStatus::Running;
  meta_.error.clear();
  runs_.put_meta(batch, spec_.name, meta_);
  store_.write(batch, true);
  return checkpoint;
}

void Run::Impl::make_steps(const std::optional<store::Checkpoint>& checkpoint) {
  std::vector<const spec::StepSpec*> specs = {&spec_.source};
  for (const auto& s : spec_.stages) specs.push_back(&s);
  for (const auto& s : spec_.sinks) specs.push_back(&s);
  for (const spec::StepSpec* s : specs) {
    auto step = std::make_unique<Step>(*s);
    if (checkpoint)
      for (const StepStats& saved : checkpoint->steps)
        if (saved.step == s->name) step->counters.restore(saved);
    steps_.push_back(std::move(step));
  }
  if (checkpoint) {
    position_ = checkpoint->position;
    records_at_start_ = checkpoint->records_read;
    records_read_ = checkpoint->records_read;
  }
}

void Run::Impl::start_plugins(const std::optional<store::Checkpoint>& checkpoint) {
  for (auto& step : steps_) {
    const spec::StepSpec& s = step->spec;
    step->context = std::make_unique<StepContext>(*this, s, RunInfo{spec_.name, meta_.run, s.name, resumed_},
                                                  step->counters);
    unsigned declared = 0;
    try {
      switch (s.kind) {
        case Kind::Source:
          step->source = s.component->make_source(*step->context);
          declared = step->source->decode_parallelism();
          break;
        case Kind::Stage:
          step->stage = s.component->make_stage(*step->context);
          step->async = step->stage->is_async();
          declared = step->stage->prepare_parallelism();
          break;
        case Kind::Sink:
          step->sink = s.component->make_sink(*step->context);
          declared = step->sink->encode_parallelism();
          break;
        case Kind::Command: break;
      }
    } catch (const std::exception& e) {
      throw RunError(s.name + " (plugin " + s.plugin->name + "): " + e.what());
    }
    step->parallelism = s.parallelism_cap ? std::min(declared, s.parallelism_cap) : declared;
  }
  if (checkpoint) {
    if (!position_.empty()) {
      try {
        steps_[0]->source->seek(position_);
      } catch (const std::exception& e) {
        throw RunError("cannot resume the source at its checkpoint: " + std::string(e.what()));
      }
    }
  }
  progress_done_ = steps_[0]->source->progress().done;
  bytes_at_start_ = progress_done_.load();
  counting_ = true;
}

template <class F>
void Run::Impl::guarded(Step& step, const char* what, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    step.counters.errors++;
    fail(step.spec.name + " (plugin " + step.spec.plugin->name + ") failed in " + what, e.what());
  } catch (...) {
    step.counters.errors++;
    fail(step.spec.name + " (plugin " + step.spec.plugin->name + ") failed in " + what, "unknown exception");
  }
}

void Run::Impl::fail(const std::string& where, const std::string& message) {
  std::lock_guard lock(mutex_);
  if (error_.empty()) error_ = where + ": " + message;
  failed_ = true;
}

bool Run::Impl::run_segment() {
  bool exhausted = false;
  tbb::task_arena arena(static_cast<int>(threads()));
  arena.execute([&] {
    tbb::flow::graph g;
    std::uint64_t seq = 0;
    std::int64_t segment_records = 0;
    Step& source = *steps_[0];
    tbb::flow::input_node<BatchPtr> reader(g, [&](tbb::flow_control& fc) -> BatchPtr {
      if (segment_records >= spec_.engine.checkpoint_every_records || stop_requested_ || failed_) {
        fc.stop();
        return nullptr;
      }
      auto batch = std::make_shared<EngineBatch>();
      bool more = false;
      const auto t0 = Clock::now();
      guarded(source, "next()", [&] { more = source.source->next(batch->batch, spec_.engine.batch_size); });
      source.counters.busy_ns += std::chrono::nanoseconds(Clock::now() - t0).count();
      if (failed_ || (!more && batch->batch.slots.empty())) {
        exhausted = !failed_;
        fc.stop();
        return nullptr;
      }
      position_ = source.source->position();
      const SourceProgress progress = source.source->progress();
      progress_done_ = progress.done;
      progress_total_ = progress.total;
      batch->seq = seq++;
      segment_records += static_cast<std::int64_t>(batch->batch.slots.size());
      records_read_ += static_cast<std::int64_t>(batch->batch.slots.size());
      const std::size_t now_inflight = ++inflight_;
      std::size_t seen = max_inflight_.load();
      while (now_inflight > seen && !max_inflight_.compare_exchange_weak(seen, now_inflight)) {
      }
      return batch;
    });
    tbb::flow::limiter_node<BatchPtr> limiter(g, spec_.engine.max_inflight_batches);
    tbb::flow::make_edge(reader, limiter);
    std::vector<std::unique_ptr<tbb::flow::graph_node>> nodes;
    tbb::flow::sender<BatchPtr>* tail = &limiter;
    for (auto& step : steps_) connect_step(g, *step, tail, nodes);
    tbb::flow::function_node<BatchPtr, tbb::flow::continue_msg> done(
        g, tbb::flow::serial, [this](const BatchPtr&) {
          --inflight_;
          return tbb::flow::continue_msg();
        });
    tbb::flow::make_edge(*tail, done);
    tbb::flow::make_edge(done, limiter.decrementer());
    reader.activate();
    g.wait_for_all();
  });
  return exhausted;
}

void Run::Impl::connect_step(tbb::flow::graph& g, Step& step, tbb::flow::sender<BatchPtr>*& tail,
                             std::vector<std::unique_ptr<tbb::flow::graph_node>>& nodes) {
  if (step.async) {
    auto node = std::make_unique<AsyncNode>(
        g, tbb::flow::unlimited,
        [this, &step](const BatchPtr& batch, AsyncNode::gateway_type& gateway) { start_async(step, batch, gateway); });
    tbb::flow::make_edge(*tail, *node);
    tail = &tbb::flow::output_port<0>(*node);  // an async_node sends only through its port
    nodes.push_back(std::move(node));
  } else if (step.parallelism > 0) {
    auto node = std::make_unique<BatchNode>(g, step.parallelism, [this, &step](const BatchPtr& batch) {
      run_parallel(step, *batch);
      return batch;
    });
    tbb::flow::make_edge(*tail, *node);
    tail = node.get();
    nodes.push_back(std::move(node));
  }
  auto order = std::make_unique<tbb::flow::sequencer_node<BatchPtr>>(g, [](const BatchPtr& b) { return b->seq; });
  auto serial = std::make_unique<BatchNode>(g, tbb::flow::serial, [this, &step](const BatchPtr& batch) {
    run_serial(step, *batch);
    return batch;
  });
  tbb::flow::make_edge(*tail, *order);
  tbb::flow::make_edge(*order, *serial);
  tail = serial.get();
  nodes.push_back(std::move(order));
  nodes.push_back(std::move(serial));
}

void Run::Impl::run_parallel(Step& step, EngineBatch& batch) {
  if (failed_) return;
  const auto t0 = Clock::now();
  switch (step.spec.kind) {
    case Kind::Source: guarded(step, "decode()", [&] { step.source->decode(batch.batch); }); break;
    case Kind::Stage: guarded(step, "prepare()", [&] { step.stage->prepare(batch.batch); }); break;
    case Kind::Sink: guarded(step, "encode()", [&] { step.sink->encode(batch.batch); }); break;
    case Kind::Command: break;
  }
  step.counters.busy_ns += std::chrono::nanoseconds(Clock::now() - t0).count();
}

void Run::Impl::start_async(Step& step, const BatchPtr& batch, AsyncNode::gateway_type& gateway) {
  gateway.reserve_wait();
  ++async_inflight_;
  auto once = std::make_shared<std::atomic<bool>>(false);
  auto done = [this, batch, &gateway, once] {
    if (once->exchange(true)) return;
    // A batch that comes back after a stop may have been given up by its
    // stage (Context::cancelled()): the segment is not committed.
    if (stop_requested_) abandon_ = true;
    --async_inflight_;
    gateway.try_put(batch);
    gateway.release_wait();
  };
  if (failed_) {
    done();
    return;
  }
  guarded(step, "prepare_async()", [&] { step.stage->prepare_async(batch->batch, done); });
  if (failed_) done();
}

void Run::Impl::run_serial(Step& step, EngineBatch& batch) {
  // A failed run skips the step, but still drops what its parallel part
  // left in scratch: an asynchronous stage's work may hold the batch itself
  // (through its completion callback), a cycle nothing else would break.
  if (failed_) {
    batch.batch.scratch.reset();
    return;
  }
  if (step.parallelism == 0 && !step.async) run_parallel(step, batch);  // a parallel part declared serial
  if (failed_) {
    batch.batch.scratch.reset();
    return;
  }
  const auto t0 = Clock::now();
  switch (step.spec.kind) {
    case Kind::Source:
      for (Slot& slot : batch.batch.slots)
        if (slot.record.id.empty()) slot.record.id = content_id(slot.record);
      break;
    case Kind::Stage: guarded(step, "process()", [&] { step.stage->process(batch.batch); }); break;
    case Kind::Sink: guarded(step, "write()", [&] { step.sink->write(batch.batch); }); break;
    case Kind::Command: break;
  }
  step.counters.busy_ns += std::chrono::nanoseconds(Clock::now() - t0).count();
  account(step, batch);
  batch.batch.scratch.reset();
}

void Run::Impl::account(Step& step, EngineBatch& batch) {
  // A drop is counted once, by the step that made it; steps may add slots
  // (a source's decode(), a teacher's n > 1), so the mark lives in the slot.
  std::int64_t live = 0;
  std::int64_t dropped_here = 0;
  const auto samples = static_cast<std::int64_t>(spec_.engine.drop_samples);
  for (Slot& slot : batch.batch.slots) {
    if (slot.live()) {
      // A sink also keeps samples of what it kept, under the reason "kept".
      const std::int64_t kept_before = step.counters.kept + live;
      if (step.spec.kind == Kind::Sink && kept_before < samples)
        step.pending_samples.push_back(
            {step.spec.name, "kept", static_cast<std::uint64_t>(kept_before), to_json_text(slot.record)});
      ++live;
      continue;
    }
    if (!slot.dropped_by.empty()) continue;
    slot.dropped_by = step.spec.name;
    ++dropped_here;
    const std::int64_t before = step.counters.count_drop(slot.drop_reason);
    if (before < samples)
      step.pending_samples.push_back(
          {step.spec.name, slot.drop_reason, static_cast<std::uint64_t>(before),
           to_json_text(slot.record)});
  }
  step.counters.in += live + dropped_here;
  step.counters.kept += live;
}

void Run::Impl::commit(std::optional<RunStatus> new_status) {
  for (auto& step : steps_)
    if (step->sink) guarded(*step, "flush()", [&] { step->sink->flush(); });
  if (failed_) return;
  try {
    store::WriteSet batch(store_);
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      Step& step = *steps_[i];
      step.context->checkpointed_state().move_pending_to(batch);
      for (const store::DropSample& sample : step.pending_samples)
        runs_.put_drop(batch, spec_.name, meta_.run, static_cast<std::uint32_t>(i), sample);
      step.pending_samples.clear();
    }
    runs_.put_checkpoint(batch, spec_.name, meta_.run, {position_, records_read_.load(), stats()});
    if (new_status) {
      meta_.status = *new_status;
      meta_.ended_ms = wall_ms();
      runs_.put_meta(batch, spec_.name, meta_);
    }
    store_.write(batch, true);
    ++checkpoints_;
  } catch (const std::exception& e) {
    fail("committing a checkpoint", e.what());
  }
}

void Run::Impl::finish_sinks() {
  finishing_ = true;
  for (auto& step : steps_) {
    if (!step->sink || failed_) continue;
    progress(step->spec.name, 0, 0, "");
    guarded(*step, "finish()", [&] { step->sink->finish(); });
  }
  finishing_ = false;
  progress("", 0, 0, "");
}

// Every record has been read and committed, so the checkpoint's position is
// final: rewriting it with the live counters loses nothing.
void Run::Impl::commit_step(StepContext& context) {
  if (!finishing_)
    throw std::logic_error("Context::commit() is only for a sink's finish(); state is committed with checkpoints");
  store::WriteSet batch(store_);
  context.checkpointed_state().move_pending_to(batch);
  runs_.put_checkpoint(batch, spec_.name, meta_.run, {position_, records_read_.load(), stats()});
  store_.write(batch, true);
}

void Run::Impl::end(RunStatus status) {
  std::lock_guard lock(mutex_);
  status_ = status;
}

std::vector<StepStats> Run::Impl::stats() const {
  std::vector<StepStats> out;
  if (!ready_) return out;
  for (const auto& step : steps_) out.push_back(step->counters.snapshot(step->spec.name, step->spec.plugin->name));
  return out;
}

RunSnapshot Run::Impl::snapshot() const {
  RunSnapshot s;
  s.pipeline = spec_.name;
  if (ready_) s.run = meta_.run;
  s.resumed = resumed_;
  s.already_completed = already_completed_;
  s.records_read = records_read_;
  if (counting_) {
    s.records_read_here = s.records_read - records_at_start_;
    s.bytes_read_here = progress_done_ - bytes_at_start_;
  }
  s.source_progress = {progress_done_.load(), progress_total_.load()};
  s.steps = stats();
  s.inflight_batches = inflight_;
  s.max_inflight_batches_seen = max_inflight_;
  s.checkpoints = checkpoints_;
  if (const std::int64_t started = started_ns_; started != 0)
    s.elapsed_s = std::chrono::duration<double>(Clock::now().time_since_epoch() - Clock::duration(started)).count();
  std::lock_guard lock(mutex_);
  s.status = status_;
  s.error = error_;
  s.refused = refused_;
  s.finishing_step = finishing_step_;
  s.finish_done = finish_done_;
  s.finish_total = finish_total_;
  s.finish_unit = finish_unit_;
  return s;
}

Run::Run(store::Store& store, const spec::PipelineSpec& spec, RunOptions options)
    : impl_(std::make_unique<Impl>(store, spec, options)) {}
Run::~Run() = default;
RunStatus Run::execute() { return impl_->execute(); }
void Run::stop() { impl_->stop(); }
RunSnapshot Run::snapshot() const { return impl_->snapshot(); }
std::vector<LogLine> Run::log_since(std::uint64_t after_seq, std::size_t limit) const {
  return impl_->log_since(after_seq, limit);
}

}  // namespace distill::engine
