// The daemon's pipelines and their state machine.
#include "server/controller.h"

#include <distill/version.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <thread>

#include "rpc/convert.h"
#include "rpc/distill_constants.h"
#include "spec/pipeline_spec.h"
#include "store/runs.h"

namespace distill::server {
namespace {

using rpc::PipelineState;
namespace fs = std::filesystem;

// Opens a pipeline's store read-only beside the worker that may be writing
// it. Such an open can fail for a moment (a write-ahead log the worker
// removes between RocksDB's listing and its reading): try a few times
// before calling it a failure.
std::unique_ptr<store::Store> open_beside_worker(const fs::path& state_dir) {
  for (int attempt = 1;; ++attempt) {
    try {
      return store::Store::open(state_dir, store::Store::Mode::ReadOnly);
    } catch (const std::exception&) {
      if (attempt == 5) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    }
  }
}

constexpr std::size_t kLogLines = 2000;  // per pipeline, in the daemon's memory
constexpr int kMaxSamples = 1000;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

rpc::OperationError error(rpc::ErrorKind::type kind, std::string message) {
  rpc::OperationError e;
  e.kind = kind;
  e.message = std::move(message);
  return e;
}

bool is_active(PipelineState::type state) {
  return state == PipelineState::STARTING || state == PipelineState::RUNNING || state == PipelineState::STOPPING;
}

unsigned budget_of(const ControllerOptions& options) {
  if (options.thread_budget) return options.thread_budget;
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string signal_text(int signal) {
  const char* name = ::sigdescr_np(signal);
  return "signal " + std::to_string(signal) + (name ? std::string(" (") + name + ")" : "");
}

}  // namespace

Controller::Controller(ControllerOptions options)
    : options_(std::move(options)),
      catalog_(options_.state_dir / "daemon"),
      supervisor_({[this](const std::string& name, rpc::WorkerReport report) { on_report(name, std::move(report)); },
                   [this](const WorkerExit& exit) { on_exit(exit); }}) {
  for (const auto& dir : plugins::Registry::default_dirs()) registry_.load_dir(dir);
  for (PipelineRecord& record : catalog_.pipelines()) {
    Pipeline pipeline;
    pipeline.record = std::move(record);
    pipelines_.emplace(pipeline.record.name, std::move(pipeline));
  }
}

Controller::~Controller() { shut_down(); }

void Controller::resume_interrupted() {
  std::lock_guard lock(mutex_);
  for (auto& [name, pipeline] : pipelines_) {
    const PipelineState::type state = pipeline.record.state;
    if (state == PipelineState::STOPPING) {
      set_state(pipeline, pipeline.record.stop_target);
    } else if (state == PipelineState::RUNNING || state == PipelineState::STARTING) {
      note(pipeline, "info", "the daemon restarted: resuming from the last checkpoint");
      launch(pipeline, false, std::chrono::milliseconds(0));
    }
  }
}

void Controller::shut_down() {
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) return;
    shutting_down_ = true;
  }
  supervisor_.shutdown(Clock::now() + options_.grace);
}

fs::path Controller::pipeline_dir(const std::string& name) const { return options_.state_dir / "pipelines" / name; }

Controller::Pipeline& Controller::find(const std::string& name) {
  const auto it = pipelines_.find(name);
  if (it == pipelines_.end())
    throw error(rpc::ErrorKind::NOT_FOUND,
                "no pipeline named '" + name + "': `distillctl list` shows them, `distillctl submit FILE` adds one");
  return it->second;
}

rpc::PipelineInfo Controller::info(const Pipeline& pipeline) const {
  const PipelineRecord& r = pipeline.record;
  rpc::PipelineInfo info;
  if (pipeline.live) info = pipeline.live->info;
  info.name = r.name;
  info.revision = r.revision;
  info.state = r.state;
  info.run = std::max(info.run, r.run);
  info.description = r.description;
  info.file = r.file;
  if (!pipeline.live) info.progress = r.state == PipelineState::COMPLETED ? 1 : -1;
  const bool running = pipeline.live && pipeline.live->live;
  if (!r.error.empty()) info.error = r.error;
  info.consecutive_crashes = r.consecutive_crashes;
  info.submitted_ms = r.submitted_ms;
  info.updated_ms = r.updated_ms;
  info.threads = running ? pipeline.threads : 0;
  return info;
}

void Controller::save(const Pipeline& pipeline) {
  try {
    catalog_.put(pipeline.record);
  } catch (const std::exception& e) {
    throw error(rpc::ErrorKind::INTERNAL, std::string("cannot record the pipeline's state: ") + e.what() +
                                              "; check the disk of " + options_.state_dir.string());
  }
}

void Controller::set_state(Pipeline& pipeline, PipelineState::type state, std::string error_text) {
  pipeline.record.state = state;
  pipeline.record.error = std::move(error_text);
  pipeline.record.updated_ms = now_ms();
  save(pipeline);
}

void Controller::note(Pipeline& pipeline, const std::string& level, const std::string& message) {
  rpc::LogLine line;
  line.seq = ++pipeline.last_log_seq;
  line.time_ms = now_ms();
  line.level = level;
  line.message = message;
  pipeline.log.push_back(std::move(line));
  if (pipeline.log.size() > kLogLines) pipeline.log.pop_front();
}

void Controller::launch(Pipeline& pipeline, bool new_run, std::chrono::milliseconds delay, std::string error_text) {
  const PipelineRecord& r = pipeline.record;
  const fs::path dir = pipeline_dir(r.name);
  const fs::path text_file = dir / ("revision-" + std::to_string(r.revision) + ".yaml");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::exists(text_file, ec)) {
    const std::optional<Revision> revision = catalog_.revision(r.name, r.revision);
    std::ofstream out(text_file, std::ios::binary);
    if (revision) out << revision->yaml;
    if (!revision || !out.flush())
      throw error(rpc::ErrorKind::INTERNAL, "cannot write " + text_file.string() + " for the worker");
  }
  const unsigned budget = budget_of(options_);
  pipeline.threads = static_cast<std::int32_t>(std::max<std::size_t>(1, budget / (supervisor_.running() + 1)));
  Launch launch{r.name,
                {options_.distilld.string(), "run-worker", "--pipeline-text", text_file.string(), "--file", r.file,
                 "--state", (dir / "state").string(), "--threads", std::to_string(pipeline.threads),
                 "--shared-socket", (options_.state_dir / "shared.sock").string()},
                dir / "worker.log"};
  if (new_run) launch.argv.push_back("--new-run");
  supervisor_.launch(std::move(launch), delay);
  pipeline.live.reset();
  set_state(pipeline, delay.count() > 0 ? PipelineState::STARTING : PipelineState::RUNNING, std::move(error_text));
}

void Controller::request_stop(Pipeline& pipeline, PipelineState::type target) {
  if (supervisor_.cancel(pipeline.record.name) && !pipeline.live) {
    set_state(pipeline, target);  // it was waiting to restart: nothing runs
    return;
  }
  pipeline.record.stop_target = target;
  set_state(pipeline, PipelineState::STOPPING);
  supervisor_.terminate(pipeline.record.name, options_.grace);
}

spec::PipelineSpec Controller::load(const std::string& yaml, const std::string& file) {
  if (file.empty() || !fs::path(file).is_absolute())
    throw error(rpc::ErrorKind::INVALID,
                "the pipeline's file must be an absolute path (relative paths in it start at its folder)");
  spec::LoadResult result = spec::load_pipeline_text(yaml, file, registry_);
  if (!result.spec) throw rpc::invalid_pipeline(result.diagnostics);
  return std::move(*result.spec);
}

rpc::ValidateResult Controller::validate(const std::string& yaml, const std::string& file) {
  const spec::PipelineSpec spec = load(yaml, file);
  rpc::ValidateResult out;
  out.name = spec.name;
  out.source_plugin = spec.source.plugin->name;
  out.stages = static_cast<std::int32_t>(spec.stages.size());
  out.sinks = static_cast<std::int32_t>(spec.sinks.size());
  return out;
}

rpc::SubmitResult Controller::submit(const rpc::SubmitRequest& request) {
  const spec::PipelineSpec valid = load(request.yaml, request.file);
  std::lock_guard lock(mutex_);
  if (shutting_down_) throw error(rpc::ErrorKind::CONFLICT, "the daemon is shutting down");
  rpc::SubmitResult result;
  result.name = valid.name;
  auto it = pipelines_.find(valid.name);
  if (it != pipelines_.end()) {
    Pipeline& existing = it->second;
    const std::optional<Revision> current = catalog_.revision(valid.name, existing.record.revision);
    if (current && current->yaml == request.yaml && current->file == request.file) {
      result.revision = existing.record.revision;
      result.changed = false;
      return result;
    }
    if (is_active(existing.record.state)) {
      if (!request.force)
        throw error(rpc::ErrorKind::CONFLICT,
                    "pipeline '" + valid.name + "' is " + rpc::state_name(existing.record.state) +
                        ": stop it first (distillctl stop " + valid.name +
                        "), or submit with --force to stop it and replace it");
      request_stop(existing, PipelineState::STOPPED);
    }
  } else {
    Pipeline fresh;
    fresh.record.name = valid.name;
    it = pipelines_.emplace(valid.name, std::move(fresh)).first;
  }
  Pipeline& pipeline = it->second;
  PipelineRecord& r = pipeline.record;
  r.revision += 1;
  r.file = request.file;
  r.submitted_ms = now_ms();
  r.updated_ms = r.submitted_ms;
  r.description = valid.description;
  try {
    catalog_.put(r, Revision{request.yaml, request.file, r.submitted_ms});
  } catch (const std::exception& e) {
    throw error(rpc::ErrorKind::INTERNAL, std::string("cannot store the pipeline: ") + e.what());
  }
  note(pipeline, "info", "revision " + std::to_string(r.revision) + " submitted from " + request.file);
  result.revision = r.revision;
  result.changed = true;
  return result;
}

rpc::PipelineInfo Controller::start(const std::string& name, bool new_run) {
  std::lock_guard lock(mutex_);
  if (shutting_down_) throw error(rpc::ErrorKind::CONFLICT, "the daemon is shutting down");
  Pipeline& pipeline = find(name);
  if (is_active(pipeline.record.state))
    throw error(rpc::ErrorKind::CONFLICT, "pipeline '" + name + "' is already " + rpc::state_name(pipeline.record.state) +
                                              " (run " + std::to_string(pipeline.record.run) + ")");
  if (pipeline.record.state == PipelineState::COMPLETED && !new_run)
    throw error(rpc::ErrorKind::CONFLICT,
                "run " + std::to_string(pipeline.record.run) + " of pipeline '" + name +
                    "' completed; start the next run with `distillctl start " + name + " --new-run`");
  pipeline.record.consecutive_crashes = 0;
  note(pipeline, "info", new_run ? "starting a new run" : "starting (resuming an interrupted run if there is one)");
  launch(pipeline, new_run, std::chrono::milliseconds(0));
  return info(pipeline);
}

rpc::PipelineInfo Controller::pause(const std::string& name) {
  std::lock_guard lock(mutex_);
  Pipeline& pipeline = find(name);
  const PipelineState::type state = pipeline.record.state;
  if (state != PipelineState::RUNNING && state != PipelineState::STARTING)
    throw error(rpc::ErrorKind::CONFLICT,
                "pipeline '" + name + "' is " + rpc::state_name(state) + ", not running: there is nothing to pause");
  note(pipeline, "info", "pausing at the next checkpoint");
  request_stop(pipeline, PipelineState::PAUSED);
  return info(pipeline);
}

rpc::PipelineInfo Controller::resume(const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    Pipeline& pipeline = find(name);
    if (pipeline.record.state != PipelineState::PAUSED)
      throw error(rpc::ErrorKind::CONFLICT, "pipeline '" + name + "' is " + rpc::state_name(pipeline.record.state) +
                                                ", not paused; `distillctl start " + name + "` starts it");
  }
  return start(name, false);
}

rpc::PipelineInfo Controller::stop(const std::string& name) {
  std::lock_guard lock(mutex_);
  Pipeline& pipeline = find(name);
  const PipelineState::type state = pipeline.record.state;
  if (state == PipelineState::PAUSED) {
    set_state(pipeline, PipelineState::STOPPED);
    return info(pipeline);
  }
  if (state == PipelineState::STOPPING) {
    pipeline.record.stop_target = PipelineState::STOPPED;
    save(pipeline);
    return info(pipeline);
  }
  if (state != PipelineState::RUNNING && state != PipelineState::STARTING)
    throw error(rpc::ErrorKind::CONFLICT,
                "pipeline '" + name + "' is " + rpc::state_name(state) + ", not running: there is nothing to stop");
  note(pipeline, "info", "stopping at the next checkpoint");
  request_stop(pipeline, PipelineState::STOPPED);
  return info(pipeline);
}

void Controller::remove(const std::string& name) {
  std::lock_guard lock(mutex_);
  Pipeline& pipeline = find(name);
  if (is_active(pipeline.record.state) || supervisor_.has_worker(name))
    throw error(rpc::ErrorKind::CONFLICT, "pipeline '" + name + "' is " + rpc::state_name(pipeline.record.state) +
                                              ": stop it first (distillctl stop " + name + "), then delete it");
  try {
    catalog_.erase(name);
  } catch (const std::exception& e) {
    throw error(rpc::ErrorKind::INTERNAL, std::string("cannot delete the pipeline: ") + e.what());
  }
  std::error_code ec;
  fs::remove_all(pipeline_dir(name), ec);
  pipelines_.erase(name);
}

std::vector<rpc::PipelineInfo> Controller::list() {
  std::lock_guard lock(mutex_);
  std::vector<rpc::PipelineInfo> out;
  for (const auto& [name, pipeline] : pipelines_) out.push_back(info(pipeline));
  return out;
}

rpc::PipelineStatus Controller::status(const std::string& name) {
  fs::path state_dir;
  {
    std::lock_guard lock(mutex_);
    Pipeline& pipeline = find(name);
    if (pipeline.live) {  // the running worker's report, or the last one of this daemon's life
      rpc::PipelineStatus status = *pipeline.live;
      status.info = info(pipeline);
      return status;
    }
    const PipelineState::type state = pipeline.record.state;
    if (state == PipelineState::STARTING || state == PipelineState::RUNNING || state == PipelineState::STOPPING) {
      // A worker is starting and has not reported yet: its figures come
      // with its first report, within a fraction of a second.
      rpc::PipelineStatus status;
      status.info = info(pipeline);
      return status;
    }
    state_dir = pipeline_dir(name) / "state";
  }
  // Not running: as its own store last recorded it (read-only, so a worker
  // starting meanwhile is not disturbed).
  rpc::PipelineStatus status;
  std::error_code ec;
  if (fs::exists(state_dir / "CURRENT", ec)) {
    try {
      auto store = open_beside_worker(state_dir);
      store::RunStore runs(*store);
      if (std::optional<store::RunMeta> meta = runs.latest_run(name))
        status = rpc::status_of(*meta, runs.checkpoint(name, meta->run));
    } catch (const std::exception& e) {
      throw error(rpc::ErrorKind::INTERNAL, "cannot read the state of '" + name + "': " + e.what());
    }
  }
  std::lock_guard lock(mutex_);
  Pipeline& pipeline = find(name);
  const rpc::PipelineInfo from_store = status.info;
  status.info = info(pipeline);
  status.info.records_read = from_store.records_read;
  status.info.run = std::max(status.info.run, from_store.run);
  if (status.info.error.empty()) status.info.error = from_store.error;
  return status;
}

std::vector<rpc::Sample> Controller::samples(const rpc::SampleQuery& query) {
  if (query.limit < 1 || query.limit > kMaxSamples)
    throw error(rpc::ErrorKind::INVALID, "limit must be 1.." + std::to_string(kMaxSamples));
  fs::path state_dir;
  {
    std::lock_guard lock(mutex_);
    find(query.pipeline);
    state_dir = pipeline_dir(query.pipeline) / "state";
  }
  std::error_code ec;
  if (!fs::exists(state_dir / "CURRENT", ec))
    throw error(rpc::ErrorKind::NOT_FOUND, "pipeline '" + query.pipeline + "' has not run yet");
  std::vector<rpc::Sample> out;
  try {
    auto store = open_beside_worker(state_dir);
    store::RunStore runs(*store);
    std::uint64_t run = static_cast<std::uint64_t>(query.run);
    if (run == 0) {
      const std::optional<store::RunMeta> latest = runs.latest_run(query.pipeline);
      if (!latest) throw error(rpc::ErrorKind::NOT_FOUND, "pipeline '" + query.pipeline + "' has not run yet");
      run = latest->run;
    }
    for (const store::DropSample& sample :
         runs.drops(query.pipeline, run, query.step, query.reason, static_cast<std::size_t>(query.limit)))
      out.push_back(rpc::to_rpc(sample));
  } catch (const rpc::OperationError&) {
    throw;
  } catch (const std::exception& e) {
    throw error(rpc::ErrorKind::INTERNAL, "cannot read the samples of '" + query.pipeline + "': " + e.what());
  }
  return out;
}

rpc::PluginList Controller::plugins() {
  rpc::PluginList out;
  for (const plugins::LoadedPlugin* plugin : registry_.plugins()) out.plugins.push_back(rpc::to_rpc(*plugin));
  out.not_loaded = registry_.errors();
  return out;
}

rpc::PluginInfo Controller::describe_plugin(const std::string& name) {
  const plugins::LoadedPlugin* plugin = registry_.find(name);
  if (!plugin) throw error(rpc::ErrorKind::NOT_FOUND, "no plugin named '" + name + "': `distillctl plugins` lists them");
  return rpc::to_rpc(*plugin);
}

rpc::Health Controller::health() {
  rpc::Health health;
  health.version = DISTILL_VERSION;
  health.api_version = rpc::g_distill_constants.API_VERSION;
  health.sdk_abi = DISTILL_SDK_ABI;
  health.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  health.workers = static_cast<std::int32_t>(supervisor_.running());
  health.thread_budget = static_cast<std::int32_t>(budget_of(options_));
  health.state_dir = options_.state_dir.string();
  std::lock_guard lock(mutex_);
  for (const auto& [name, pipeline] : pipelines_) health.pipelines_by_state[rpc::state_name(pipeline.record.state)]++;
  return health;
}

rpc::RescanResult Controller::rescan_plugins() {
  const std::vector<const plugins::LoadedPlugin*> before = registry_.plugins();
  for (const auto& dir : plugins::Registry::default_dirs()) registry_.load_dir(dir);
  rpc::RescanResult result;
  for (const plugins::LoadedPlugin* plugin : registry_.plugins())
    if (std::find(before.begin(), before.end(), plugin) == before.end()) result.added.push_back(plugin->name);
  result.not_loaded = registry_.errors();
  return result;
}

std::vector<rpc::LogLine> Controller::run_log(const std::string& name, std::int64_t after_seq, int limit) {
  if (limit < 1) throw error(rpc::ErrorKind::INVALID, "limit must be at least 1");
  std::lock_guard lock(mutex_);
  const Pipeline& pipeline = find(name);
  std::vector<rpc::LogLine> out;
  for (const rpc::LogLine& line : pipeline.log) {
    if (line.seq <= after_seq) continue;
    if (static_cast<int>(out.size()) >= limit) break;
    out.push_back(line);
  }
  return out;
}

void Controller::on_report(const std::string& name, rpc::WorkerReport report) {
  std::lock_guard lock(mutex_);
  const auto it = pipelines_.find(name);
  if (it == pipelines_.end()) return;
  Pipeline& pipeline = it->second;
  if (report.log) {
    rpc::LogLine line = std::move(*report.log);
    line.seq = ++pipeline.last_log_seq;
    pipeline.log.push_back(std::move(line));
    if (pipeline.log.size() > kLogLines) pipeline.log.pop_front();
  }
  if (report.status) {
    pipeline.live = std::move(*report.status);
    if (pipeline.live->info.run > pipeline.record.run) {
      pipeline.record.run = pipeline.live->info.run;
      try {
        save(pipeline);
      } catch (const rpc::OperationError&) {
        // Recorded again at the next change of state.
      }
    }
  }
}

void Controller::on_exit(const WorkerExit& exit) {
  std::lock_guard lock(mutex_);
  const auto it = pipelines_.find(exit.pipeline);
  if (it == pipelines_.end()) return;
  Pipeline& pipeline = it->second;
  const std::string last_error = pipeline.live ? pipeline.live->info.error : "";
  if (pipeline.live) pipeline.live->live = false;  // the worker's last word stays until the next start
  try {
    const bool stopping = pipeline.record.state == PipelineState::STOPPING;
    if (exit.exit_code == 0) {
      pipeline.record.consecutive_crashes = 0;
      note(pipeline, "info", "run " + std::to_string(pipeline.record.run) + " completed");
      set_state(pipeline, PipelineState::COMPLETED);
    } else if (stopping && (exit.exit_code == 130 || exit.signal == SIGKILL || exit.signal == SIGTERM)) {
      note(pipeline, "info", "stopped; the run resumes from its last checkpoint");
      set_state(pipeline, pipeline.record.stop_target);
    } else if (shutting_down_ && (exit.exit_code == 130 || exit.signal == SIGKILL || exit.signal == SIGTERM)) {
      note(pipeline, "info", "stopped for the daemon's shutdown; resumes when the daemon starts again");
    } else if (exit.exit_code > 0 || exit.start_failed) {
      pipeline.record.consecutive_crashes = 0;
      const std::string why = exit.start_failed ? exit.start_error
                              : last_error.empty()
                                  ? "the worker exited with code " + std::to_string(exit.exit_code) + "; see " +
                                        (pipeline_dir(exit.pipeline) / "worker.log").string()
                                  : last_error;
      note(pipeline, "error", why);
      set_state(pipeline, PipelineState::FAILED, why);
    } else {
      on_crash(pipeline, exit);
    }
  } catch (const rpc::OperationError& e) {
    note(pipeline, "error", e.message);
  }
}

void Controller::on_crash(Pipeline& pipeline, const WorkerExit& exit) {
  PipelineRecord& r = pipeline.record;
  r.consecutive_crashes += 1;
  const std::string crash = "the worker crashed: " + signal_text(exit.signal) + "; its output is in " +
                            (pipeline_dir(r.name) / "worker.log").string();
  note(pipeline, "error", crash);
  if (shutting_down_ || r.state == PipelineState::STOPPING) {
    set_state(pipeline, shutting_down_ ? r.state : r.stop_target, crash);
    return;
  }
  if (r.consecutive_crashes >= options_.max_crashes) {
    set_state(pipeline, PipelineState::FAILED,
              crash + ". It crashed " + std::to_string(r.consecutive_crashes) +
                  " times in a row, so it is not restarted: fix the cause, then `distillctl start " + r.name +
                  "` resumes from the last checkpoint");
    return;
  }
  const auto delay = options_.first_restart_delay * (1 << (r.consecutive_crashes - 1));
  note(pipeline, "info",
       "restarting in " + std::to_string(delay.count()) + " ms (crash " + std::to_string(r.consecutive_crashes) +
           " of at most " + std::to_string(options_.max_crashes) + " in a row)");
  launch(pipeline, false, delay, crash);
}

}  // namespace distill::server
