// distilld's command line: validate, run, status, samples and plugins, and
// the commands plugins add (the student's `generate`).
// `distilld run` executes one pipeline in this process with a live
// progress display; SIGINT/SIGTERM stop it at the next checkpoint.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <iostream>
#include <thread>

#include "cli/report.h"
#include "server/serve.h"
#include "worker/worker.h"
#include "engine/run.h"
#include "plugins/registry.h"
#include "spec/pipeline_spec.h"
#include "store/runs.h"

namespace {

using namespace distill;

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int signal) { g_stop_signal = signal; }

void load_default_plugins(plugins::Registry& registry) {
  for (const auto& dir : plugins::Registry::default_dirs()) registry.load_dir(dir);
}

// Validates the file; prints diagnostics and returns nullopt on errors.
std::optional<spec::PipelineSpec> load_or_report(const std::string& file, plugins::Registry& registry) {
  load_default_plugins(registry);
  spec::LoadResult result = spec::load_pipeline(file, registry);
  for (const Diagnostic& d : result.diagnostics) std::cerr << spec::format(d) << "\n";
  if (!result.diagnostics.empty())
    std::cerr << result.diagnostics.size() << (result.diagnostics.size() == 1 ? " error" : " errors") << " in " << file
              << "\n";
  return std::move(result.spec);
}

// Validates `file`, opens its state database and runs `body`; every error
// ends as one message on stderr and exit code 1.
int with_store(const std::string& file, store::Store::Mode mode,
               const std::function<int(const spec::PipelineSpec&, store::Store&)>& body) {
  plugins::Registry registry;
  std::optional<spec::PipelineSpec> spec = load_or_report(file, registry);
  if (!spec) return 1;
  try {
    std::unique_ptr<store::Store> store = store::Store::open(spec->state_dir, mode);
    return body(*spec, *store);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

int cmd_validate(const std::string& file) {
  plugins::Registry registry;
  std::optional<spec::PipelineSpec> spec = load_or_report(file, registry);
  if (!spec) return 1;
  std::cout << file << ": ok (source " << spec->source.plugin->name << ", " << spec->stages.size() << " stage"
            << (spec->stages.size() == 1 ? "" : "s") << ", " << spec->sinks.size() << " sink"
            << (spec->sinks.size() == 1 ? "" : "s") << "; state in " << spec->state_dir.string() << ")\n";
  return 0;
}

// TBB caps its workers at the core count; a pipeline may ask for more.
// This process hosts one run, so the process-wide limit is the run's.
std::optional<tbb::global_control> allow_threads(unsigned threads) {
  if (static_cast<int>(threads) <= tbb::info::default_concurrency()) return std::nullopt;
  return std::optional<tbb::global_control>(std::in_place, tbb::global_control::max_allowed_parallelism,
                                            static_cast<std::size_t>(threads));
}

// Prints the run's new log lines as "[pipeline/step] level: message";
// returns the last sequence number printed.
std::uint64_t print_log(const engine::Run& run, const std::string& pipeline, std::uint64_t after) {
  for (const engine::LogLine& line : run.log_since(after)) {
    std::cerr << "[" << pipeline << (line.step.empty() ? "" : "/") << line.step << "] " << line.level << ": "
              << line.message << "\n";
    after = line.seq;
  }
  return after;
}

int cmd_run(const std::string& file, bool new_run, bool quiet) {
  return with_store(file, store::Store::Mode::ReadWrite, [&](const spec::PipelineSpec& spec, store::Store& store) {
    const auto thread_limit = allow_threads(spec.engine.threads);
    engine::RunOptions options;
    options.new_run = new_run;
    engine::Run run(store, spec, options);
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    store::RunStatus status = store::RunStatus::Running;
    std::thread worker([&] { status = run.execute(); });
    const bool live = !quiet && isatty(STDERR_FILENO);
    std::size_t drawn_lines = 0;
    std::uint64_t logged = 0;
    auto finished = [&] { return run.snapshot().status != store::RunStatus::Running; };
    int ticks = 0;
    while (!finished()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (g_stop_signal) run.stop();
      for (std::size_t i = 0; i < drawn_lines; ++i) std::cerr << "\x1b[1A\x1b[2K";
      drawn_lines = 0;
      logged = print_log(run, spec.name, logged);
      if (live) {
        const std::string block = cli::progress_block(run.snapshot());
        std::cerr << block << std::flush;
        drawn_lines = static_cast<std::size_t>(std::count(block.begin(), block.end(), '\n'));
      } else if (!quiet && ++ticks % 150 == 0) {
        std::cerr << cli::progress_block(run.snapshot()) << std::flush;
      }
    }
    worker.join();
    for (std::size_t i = 0; i < drawn_lines; ++i) std::cerr << "\x1b[1A\x1b[2K";
    const engine::RunSnapshot snapshot = run.snapshot();
    if (snapshot.refused) {
      std::cerr << "error: " << snapshot.error << "\n";
      return 1;
    }
    print_log(run, spec.name, logged);
    std::cout << cli::summary(snapshot);
    if (status == store::RunStatus::Stopped) return 130;
    return status == store::RunStatus::Completed ? 0 : 1;
  });
}

int cmd_status(const std::string& file) {
  return with_store(file, store::Store::Mode::ReadOnly, [](const spec::PipelineSpec& spec, store::Store& store) {
    store::RunStore runs(store);
    std::vector<store::RunMeta> all = runs.runs(spec.name);
    if (all.empty()) {
      std::cout << "pipeline '" << spec.name << "' has not run yet\n";
      return 0;
    }
    for (const store::RunMeta& meta : all) {
      std::cout << "run " << meta.run << ": " << store::to_string(meta.status);
      if (!meta.error.empty()) std::cout << " (" << meta.error << ")";
      std::cout << "\n";
    }
    const store::RunMeta& last = all.back();
    if (std::optional<store::Checkpoint> checkpoint = runs.checkpoint(spec.name, last.run)) {
      engine::RunSnapshot snapshot;
      snapshot.pipeline = spec.name;
      snapshot.run = last.run;
      snapshot.status = last.status;
      snapshot.error = last.error;
      snapshot.records_read = checkpoint->records_read;
      snapshot.records_read_here = checkpoint->records_read;  // the rate over the run's whole life
      snapshot.steps = checkpoint->steps;
      snapshot.elapsed_s = static_cast<double>((last.ended_ms ? last.ended_ms : last.started_ms) - last.started_ms) / 1000.0;
      std::cout << "\nlast checkpoint of run " << last.run << ":\n" << cli::summary(snapshot);
    }
    return 0;
  });
}

int cmd_samples(const std::string& file, std::uint64_t run, const std::string& step, const std::string& reason,
                std::size_t limit) {
  return with_store(file, store::Store::Mode::ReadOnly, [&](const spec::PipelineSpec& spec, store::Store& store) {
    store::RunStore runs(store);
    std::uint64_t which = run;
    if (which == 0) {
      std::optional<store::RunMeta> latest = runs.latest_run(spec.name);
      if (!latest) {
        std::cerr << "pipeline '" << spec.name << "' has not run yet\n";
        return 1;
      }
      which = latest->run;
    }
    for (const store::DropSample& sample : runs.drops(spec.name, which, step, reason, limit))
      std::cout << R"({"step":)" << nlohmann::json(sample.step).dump() << R"(,"reason":)"
                << nlohmann::json(sample.reason).dump() << R"(,"record":)" << sample.record_json << "}\n";
    return 0;
  });
}

int cmd_plugins(const std::string& describe) {
  plugins::Registry registry;
  load_default_plugins(registry);
  for (const plugins::LoadedPlugin* plugin : registry.plugins()) {
    if (!describe.empty() && plugin->name != describe) continue;
    std::cout << plugin->name << "  " << plugin->info->description << "\n  file: " << plugin->file.string() << "\n";
    for (const Component& component : plugin->info->components) {
      if (component.kind == Kind::Command) {
        std::cout << "  adds the command: distilld " << component.command_name << " " << component.command_usage << "\n";
        continue;
      }
      std::cout << "  as a " << to_string(component.kind) << ":\n" << spec::describe(component.params, "    ");
    }
    std::cout << "\n";
  }
  for (const std::string& error : registry.errors()) std::cerr << "not loaded: " << error << "\n";
  if (!describe.empty() && !registry.find(describe)) {
    std::cerr << "no plugin named '" << describe << "'\n";
    return 1;
  }
  return 0;
}

// `distilld NAME ARGS...` where a plugin adds the command NAME; nullopt
// when no plugin does.
std::optional<int> run_plugin_command(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return std::nullopt;
  const std::string name = argv[1];
  plugins::Registry registry;
  load_default_plugins(registry);
  for (const plugins::LoadedPlugin* plugin : registry.plugins())
    for (const Component& component : plugin->info->components)
      if (component.kind == Kind::Command && component.command_name == name) {
        try {
          return component.run_command(std::vector<std::string>(argv + 2, argv + argc));
        } catch (const std::exception& e) {
          std::cerr << "error: " << e.what() << "\n";
          return 1;
        }
      }
  return std::nullopt;
}

const char* const kBuiltinCommands[] = {"validate", "run", "status", "samples", "plugins", "serve", "run-worker"};

std::filesystem::path this_binary() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("distilld") : self;
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) makes write() fail with EFBIG, reported
  // like a full disk, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc >= 2 && std::find(std::begin(kBuiltinCommands), std::end(kBuiltinCommands), std::string(argv[1])) ==
                       std::end(kBuiltinCommands))
    if (std::optional<int> code = run_plugin_command(argc, argv)) return *code;
  CLI::App app{"distilld: knowledge-distillation pipelines"};
  app.footer("Plugins add commands of their own, e.g. `distilld generate STUDENT_DIR PROMPT` (the student plugin);\n"
             "`distilld plugins` lists them.");
  app.require_subcommand(1);

  std::string file;
  auto* validate = app.add_subcommand("validate", "check a pipeline file and report every error");
  validate->add_option("pipeline", file, "pipeline YAML file")->required();

  bool new_run = false;
  bool quiet = false;
  auto* run = app.add_subcommand("run", "run a pipeline to completion (resumes an interrupted run)");
  run->add_option("pipeline", file, "pipeline YAML file")->required();
  run->add_flag("--new-run", new_run, "start a new run even if the last one completed (or abandon an interrupted one)");
  run->add_flag("-q,--quiet", quiet, "no progress display, only the summary");

  auto* status = app.add_subcommand("status", "show the runs of a pipeline and its last checkpoint");
  status->add_option("pipeline", file, "pipeline YAML file")->required();

  std::uint64_t run_number = 0;
  std::string step;
  std::string reason;
  std::size_t limit = 20;
  auto* samples = app.add_subcommand("samples", "print sampled dropped records as JSON lines");
  samples->add_option("pipeline", file, "pipeline YAML file")->required();
  samples->add_option("--run", run_number, "run number (default: the latest)");
  samples->add_option("--step", step, "only drops by this step (e.g. source, exact_dedupe)");
  samples->add_option("--reason", reason, "only drops with this reason");
  samples->add_option("--limit", limit, "at most this many records")->capture_default_str();

  std::string describe;
  auto* plugins_cmd = app.add_subcommand("plugins", "list the plugins found and their parameters");
  plugins_cmd->add_option("--describe", describe, "show only this plugin");

  server::ServeOptions serve_options;
  int grace_s = 30;
  auto* serve = app.add_subcommand("serve", "run the daemon: hold pipelines and run them, driven over its control socket");
  serve->add_option("--state", serve_options.state_dir, "state folder: the daemon's database, the pipelines' state, control.sock")
      ->required();
  serve->add_option("--grace-s", grace_s, "seconds a SIGTERM waits for runs to reach their checkpoint")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  serve->add_option("--threads", serve_options.threads, "threads shared by all running pipelines (default: the cores)")
      ->check(CLI::Range(1, 4096));
  serve->add_option("--max-crashes", serve_options.max_crashes,
                    "consecutive crashes after which a pipeline is not restarted")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  serve->add_option("--tcp", serve_options.tcp,
                    "also listen on TCP at HOST:PORT; clients must authenticate with the token file's text");
  serve->add_option("--token-file", serve_options.token_file,
                    "the token TCP clients must present (default: STATE/token, made mode 0600 when missing)");
  serve->add_option("--metrics-port", serve_options.metrics_port,
                    "serve Prometheus metrics on http://127.0.0.1:PORT/metrics (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535));

  worker::WorkerOptions worker_options;
  auto* run_worker = app.add_subcommand("run-worker", "");  // the daemon's worker process; not for people
  run_worker->group("");
  run_worker->add_option("--pipeline-text", worker_options.pipeline_text)->required();
  run_worker->add_option("--file", worker_options.file)->required();
  run_worker->add_option("--state", worker_options.state_dir)->required();
  run_worker->add_option("--threads", worker_options.threads);
  run_worker->add_flag("--new-run", worker_options.new_run);
  run_worker->add_option("--shared-socket", worker_options.shared_socket);

  CLI11_PARSE(app, argc, argv);
  if (*serve) {
    serve_options.grace = std::chrono::seconds(grace_s);
    serve_options.distilld = this_binary();
    return server::serve(serve_options);
  }
  if (*run_worker) return worker::run_worker(worker_options);
  if (*validate) return cmd_validate(file);
  if (*run) return cmd_run(file, new_run, quiet);
  if (*status) return cmd_status(file);
  if (*samples) return cmd_samples(file, run_number, step, reason, limit);
  return cmd_plugins(describe);
}
