// What the daemon does, apart from the wire: the pipelines it holds and
// their state machine (submit, start, pause, resume, stop, delete, crash
// and restart), backed by the catalog, with one worker process per running
// pipeline (see supervisor.h). Every public call is thread-safe and reports
// failure as rpc::OperationError or rpc::InvalidPipeline, whose messages say
// what to do.
#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "plugins/registry.h"
#include "rpc/distill_types.h"
#include "server/catalog.h"
#include "server/supervisor.h"
#include "spec/pipeline_spec.h"

namespace distill::server {

struct ControllerOptions {
  std::filesystem::path state_dir;
  std::chrono::milliseconds grace{std::chrono::seconds(30)};  // for a worker to stop at its checkpoint
  unsigned thread_budget = 0;  // threads shared by running pipelines; 0: the machine's cores
  int max_crashes = 3;         // consecutive crashes after which a pipeline is not restarted
  std::chrono::milliseconds first_restart_delay{std::chrono::seconds(1)};  // doubles with each crash
  std::filesystem::path distilld;  // the binary that runs workers (`distilld run-worker`)
};

class Controller {
 public:
  explicit Controller(ControllerOptions options);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Starts again the pipelines that were running when the last daemon stopped.
  void resume_interrupted();
  // Stops every worker (each commits a checkpoint), waiting at most the
  // grace period; the pipelines keep their state and resume at next start.
  void shut_down();

  rpc::SubmitResult submit(const rpc::SubmitRequest& request);
  rpc::ValidateResult validate(const std::string& yaml, const std::string& file);
  rpc::PipelineInfo start(const std::string& name, bool new_run);
  rpc::PipelineInfo pause(const std::string& name);
  rpc::PipelineInfo resume(const std::string& name);
  rpc::PipelineInfo stop(const std::string& name);
  void remove(const std::string& name);
  std::vector<rpc::PipelineInfo> list();
  rpc::PipelineStatus status(const std::string& name);
  std::vector<rpc::Sample> samples(const rpc::SampleQuery& query);
  rpc::PluginList plugins();
  rpc::PluginInfo describe_plugin(const std::string& name);
  rpc::Health health();
  rpc::RescanResult rescan_plugins();
  std::vector<rpc::LogLine> run_log(const std::string& name, std::int64_t after_seq, int limit);

 private:
  struct Pipeline {
    PipelineRecord record;
    // The worker's last report (live while it runs): the figures of a run
    // that ended stay until the next start.
    std::optional<rpc::PipelineStatus> live;
    std::deque<rpc::LogLine> log;             // the newest lines
    std::int64_t last_log_seq = 0;
    std::int32_t threads = 0;
  };

  Pipeline& find(const std::string& name);
  rpc::PipelineInfo info(const Pipeline& pipeline) const;
  std::filesystem::path pipeline_dir(const std::string& name) const;
  void launch(Pipeline& pipeline, bool new_run, std::chrono::milliseconds delay, std::string error_text = "");
  void request_stop(Pipeline& pipeline, rpc::PipelineState::type target);
  void set_state(Pipeline& pipeline, rpc::PipelineState::type state, std::string error = "");
  void save(const Pipeline& pipeline);
  void note(Pipeline& pipeline, const std::string& level, const std::string& message);
  void on_report(const std::string& name, rpc::WorkerReport report);
  void on_exit(const WorkerExit& exit);
  void on_crash(Pipeline& pipeline, const WorkerExit& exit);
  // Validates a pipeline's text; throws rpc::InvalidPipeline with every problem.
  spec::PipelineSpec load(const std::string& yaml, const std::string& file);

  const ControllerOptions options_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  plugins::Registry registry_;
  Catalog catalog_;
  std::mutex mutex_;  // guards pipelines_ and shutting_down_
  std::map<std::string, Pipeline> pipelines_;
  bool shutting_down_ = false;
  Supervisor supervisor_;  // last: its thread calls back into the fields above
};

}  // namespace distill::server
