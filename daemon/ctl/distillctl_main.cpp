// distillctl: the command line over the daemon's control socket (the same
// Thrift IDL any client uses). Which daemon: --connect HOST:PORT (TCP, with
// --token-file), else --socket PATH, else --state DIR (its
// DIR/control.sock), else $DISTILLD_STATE.
//
// Exit codes: 0 done; 1 the daemon refused or could not do it (the message
// says why); 2 wrong usage; 3 no daemon answers at the socket; 4 no such
// pipeline, plugin or run; 5 the pipeline file is invalid or unreadable;
// 6 the daemon did not accept the token.
#include <CLI/CLI.hpp>
#include <thrift/transport/TTransportException.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "ctl/output.h"
#include "rpc/convert.h"
#include "rpc/wire.h"
#include "spec/pipeline_spec.h"

namespace {

using namespace distill;
namespace fs = std::filesystem;
using nlohmann::json;

enum Exit { kOk = 0, kRefused = 1, kUsage = 2, kNoDaemon = 3, kNotFound = 4, kInvalid = 5, kUnauthenticated = 6 };

struct Global {
  std::string tcp;
  std::string token_file;
  std::string socket;
  std::string state;
  std::string output = "text";
  int timeout_ms = 30000;
};

bool json_output(const Global& g) { return g.output == "json"; }

// A problem before the call: exits with `code` after printing `message`.
struct Failure {
  int code;
  std::string message;
};

std::string socket_path(const Global& g) {
  if (!g.socket.empty()) return g.socket;
  std::string state = g.state;
  if (state.empty())
    if (const char* env = std::getenv("DISTILLD_STATE")) state = env;
  if (state.empty())
    throw Failure{kUsage, "which daemon? give --state DIR (the folder distilld serve --state uses), --socket PATH, "
                          "or set DISTILLD_STATE"};
  return (fs::path(state) / "control.sock").string();
}

// The first line of the token file, for a TCP connection.
std::string read_token(const Global& g) {
  std::string file = g.token_file;
  if (file.empty())
    if (const char* env = std::getenv("DISTILLD_TOKEN_FILE")) file = env;
  if (file.empty())
    throw Failure{kUsage, "--connect needs the daemon's token: give --token-file FILE (the daemon's STATE/token) or "
                          "set DISTILLD_TOKEN_FILE"};
  std::ifstream in(file);
  std::string token;
  if (!in || !std::getline(in, token)) throw Failure{kUsage, "cannot read the token file " + file};
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

std::unique_ptr<rpc::Connection<rpc::DistillClient>> connect_tcp(const Global& g) {
  const auto colon = g.tcp.rfind(':');
  int port = 0;
  try {
    port = colon == std::string::npos ? 0 : std::stoi(g.tcp.substr(colon + 1));
  } catch (const std::exception&) {
    port = 0;
  }
  if (port <= 0 || port > 65535) throw Failure{kUsage, "--connect wants HOST:PORT, not " + g.tcp};
  const std::string token = read_token(g);
  std::unique_ptr<rpc::Connection<rpc::DistillClient>> connection;
  try {
    connection = std::make_unique<rpc::Connection<rpc::DistillClient>>(
        rpc::open_tcp(g.tcp.substr(0, colon), port, std::chrono::milliseconds(g.timeout_ms)));
  } catch (const apache::thrift::transport::TTransportException& e) {
    throw Failure{kNoDaemon, "no daemon at tcp " + g.tcp + ": is it started with `distilld serve --tcp " + g.tcp +
                                 "`? (" + e.what() + ")"};
  }
  try {
    connection->client().authenticate(token);
  } catch (const rpc::OperationError& e) {
    throw Failure{kUnauthenticated, "the daemon at tcp " + g.tcp + " refused the token: " + e.message};
  }
  return connection;
}

std::unique_ptr<rpc::Connection<rpc::DistillClient>> connect(const Global& g) {
  if (!g.tcp.empty()) return connect_tcp(g);
  const std::string path = socket_path(g);
  try {
    return std::make_unique<rpc::Connection<rpc::DistillClient>>(path, std::chrono::milliseconds(g.timeout_ms));
  } catch (const apache::thrift::transport::TTransportException& e) {
    const std::string state = fs::path(path).parent_path().string();
    throw Failure{kNoDaemon, "no daemon at " + path + ": start it with `distilld serve --state " + state + "` (" +
                                 e.what() + ")"};
  }
}

// Reads a pipeline file for submit/validate: its text and absolute path.
std::pair<std::string, std::string> read_pipeline(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Failure{kInvalid, "cannot read " + file + ": " + std::strerror(errno)};
  std::string text(spec::kMaxPipelineBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return {text, fs::absolute(file).lexically_normal().string()};
}

void print(const Global& g, const json& value, const std::string& text) {
  if (json_output(g))
    std::cout << value.dump(2) << "\n";
  else
    std::cout << text;
}

std::string info_line(const rpc::PipelineInfo& info) {
  std::string line = "pipeline " + info.name + ": " + rpc::state_name(info.state);
  if (info.run > 0) line += " (run " + std::to_string(info.run) + ")";
  return line + "\n";
}

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

int watch_status(const Global& g, rpc::DistillClient& client, const std::string& name, double interval_s) {
  std::signal(SIGINT, on_interrupt);
  const bool terminal = ::isatty(STDOUT_FILENO) && !json_output(g);
  std::size_t drawn = 0;
  for (;;) {
    rpc::PipelineStatus status;
    client.status(status, name);
    const rpc::PipelineState::type state = status.info.state;
    const bool active = state == rpc::PipelineState::STARTING || state == rpc::PipelineState::RUNNING ||
                        state == rpc::PipelineState::STOPPING;
    if (json_output(g)) {
      std::cout << ctl::to_json(status).dump() << "\n" << std::flush;
    } else {
      const std::string block = ctl::status_text(status, active);
      if (terminal)
        for (std::size_t i = 0; i < drawn; ++i) std::cout << "\x1b[1A\x1b[2K";
      std::cout << block << std::flush;
      drawn = terminal ? static_cast<std::size_t>(std::count(block.begin(), block.end(), '\n')) : 0;
    }
    if (!active || g_interrupted) return state == rpc::PipelineState::FAILED ? kRefused : kOk;
    std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
  }
}

int follow_log(const Global& g, rpc::DistillClient& client, const std::string& name, int limit, bool follow) {
  std::signal(SIGINT, on_interrupt);
  std::int64_t after = 0;
  if (!follow || limit > 0) {
    // The newest `limit` lines: ask for everything held, keep the tail.
    std::vector<rpc::LogLine> lines;
    client.run_log(lines, name, 0, 1000000);
    const std::size_t keep = limit > 0 ? std::min<std::size_t>(lines.size(), static_cast<std::size_t>(limit)) : lines.size();
    for (std::size_t i = lines.size() - keep; i < lines.size(); ++i)
      std::cout << (json_output(g) ? ctl::to_json(lines[i]).dump() + "\n" : ctl::log_text(lines[i]));
    if (!lines.empty()) after = lines.back().seq;
  }
  while (follow && !g_interrupted) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::vector<rpc::LogLine> lines;
    client.run_log(lines, name, after, 1000);
    for (const rpc::LogLine& line : lines) {
      std::cout << (json_output(g) ? ctl::to_json(line).dump() + "\n" : ctl::log_text(line)) << std::flush;
      after = line.seq;
    }
  }
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"distillctl: control a distilld daemon (distilld serve)"};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 done; 1 refused or failed (the message says why); 2 wrong usage; 3 no daemon at the socket;\n"
      "4 no such pipeline, plugin or run; 5 the pipeline file is invalid or unreadable; 6 the token was refused.");
  Global g;
  app.add_option("--state", g.state, "the daemon's state folder (default: $DISTILLD_STATE)");
  app.add_option("--socket", g.socket, "the daemon's socket (default: STATE/control.sock)");
  app.add_option("--connect", g.tcp, "a daemon on TCP (distilld serve --tcp HOST:PORT), instead of its socket");
  app.add_option("--token-file", g.token_file,
                 "with --connect: the daemon's token file (default: $DISTILLD_TOKEN_FILE)");
  app.add_option("-o,--output", g.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_option("--timeout-ms", g.timeout_ms, "how long to wait for the daemon")->check(CLI::Range(1, 3600000));

  std::string file;
  std::string name;
  bool force = false;
  bool new_run = false;
  auto* submit = app.add_subcommand("submit", "validate a pipeline file and store it (a changed file is a new revision)");
  submit->add_option("pipeline", file, "pipeline YAML file")->required();
  submit->add_flag("--force", force, "replace it even while it runs (the run is stopped first)");
  auto* validate = app.add_subcommand("validate", "check a pipeline file with the daemon's plugins; store nothing");
  validate->add_option("pipeline", file, "pipeline YAML file")->required();
  auto* start = app.add_subcommand("start", "start a pipeline (resumes its interrupted run, if any)");
  start->add_option("name", name, "pipeline name")->required();
  start->add_flag("--new-run", new_run, "start the next run although the last completed, or abandon an interrupted one");
  auto* stop = app.add_subcommand("stop", "stop a pipeline at its next checkpoint");
  stop->add_option("name", name, "pipeline name")->required();
  auto* pause = app.add_subcommand("pause", "pause a pipeline at its next checkpoint (resume continues it)");
  pause->add_option("name", name, "pipeline name")->required();
  auto* resume = app.add_subcommand("resume", "resume a paused pipeline from its checkpoint");
  resume->add_option("name", name, "pipeline name")->required();
  auto* remove = app.add_subcommand("delete", "forget a pipeline and its state (its outputs stay)");
  remove->add_option("name", name, "pipeline name")->required();
  app.add_subcommand("list", "every pipeline: state, run, progress");
  bool watch = false;
  double interval_s = 1;
  auto* status = app.add_subcommand("status", "a pipeline's state and every step's counters");
  status->add_option("name", name, "pipeline name")->required();
  status->add_flag("-w,--watch", watch, "redraw until the run ends (Ctrl-C leaves)");
  status->add_option("--interval", interval_s, "seconds between redraws")->check(CLI::Range(0.1, 3600.0));
  rpc::SampleQuery query;
  auto* samples = app.add_subcommand("samples", "sampled dropped records (JSON lines)");
  samples->add_option("name", query.pipeline, "pipeline name")->required();
  samples->add_option("--run", query.run, "run number (default: the latest)");
  samples->add_option("--step", query.step, "only drops by this step");
  samples->add_option("--reason", query.reason, "only drops with this reason");
  samples->add_option("--limit", query.limit, "at most this many")->capture_default_str()->check(CLI::Range(1, 1000));
  std::string describe;
  auto* plugins = app.add_subcommand("plugins", "the daemon's plugins and their parameters");
  plugins->add_option("--describe", describe, "only this plugin");
  app.add_subcommand("health", "the daemon's version, uptime and pipelines by state");
  int limit = 0;
  bool follow = false;
  auto* log = app.add_subcommand("log", "a pipeline's recent log lines");
  log->add_option("name", name, "pipeline name")->required();
  log->add_option("-n,--limit", limit, "only the last N lines")->check(CLI::Range(1, 1000000));
  log->add_flag("-f,--follow", follow, "keep printing new lines (Ctrl-C leaves)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }

  try {
    if (*validate || *submit) {
      const auto [text, path] = read_pipeline(file);
      auto connection = connect(g);
      if (*validate) {
        rpc::ValidateResult result;
        connection->client().validate(result, text, path);
        print(g, {{"name", result.name}, {"source", result.source_plugin}, {"stages", result.stages}, {"sinks", result.sinks}},
              file + ": ok (pipeline " + result.name + ", source " + result.source_plugin + ", " +
                  std::to_string(result.stages) + " stages, " + std::to_string(result.sinks) + " sinks)\n");
        return kOk;
      }
      rpc::SubmitRequest request;
      request.yaml = text;
      request.file = path;
      request.force = force;
      rpc::SubmitResult result;
      connection->client().submit(result, request);
      print(g, {{"name", result.name}, {"revision", result.revision}, {"changed", result.changed}},
            result.name + (result.changed ? ": revision " + std::to_string(result.revision) + " stored\n"
                                          : ": unchanged (revision " + std::to_string(result.revision) + ")\n"));
      return kOk;
    }
    auto connection = connect(g);
    rpc::DistillClient& client = connection->client();
    rpc::PipelineInfo info;
    if (*start) {
      rpc::StartOptions options;
      options.new_run = new_run;
      client.start(info, name, options);
    } else if (*stop) {
      client.stop(info, name);
    } else if (*pause) {
      client.pause(info, name);
    } else if (*resume) {
      client.resume(info, name);
    }
    if (*start || *stop || *pause || *resume) {
      print(g, ctl::to_json(info), info_line(info));
      return kOk;
    }
    if (*remove) {
      client.delete_pipeline(name);
      print(g, {{"deleted", name}}, "pipeline " + name + " deleted\n");
      return kOk;
    }
    if (app.got_subcommand("list")) {
      std::vector<rpc::PipelineInfo> all;
      client.list_pipelines(all);
      json out = json::array();
      for (const auto& p : all) out.push_back(ctl::to_json(p));
      print(g, out, ctl::pipeline_table(all, ::isatty(STDOUT_FILENO)));
      return kOk;
    }
    if (*status) {
      if (watch) return watch_status(g, client, name, interval_s);
      rpc::PipelineStatus result;
      client.status(result, name);
      print(g, ctl::to_json(result), ctl::status_text(result, false));
      return kOk;
    }
    if (*samples) {
      std::vector<rpc::Sample> result;
      client.samples(result, query);
      // One JSON line per sample either way, as `distilld samples` prints them.
      for (const rpc::Sample& sample : result) std::cout << ctl::sample_line(sample) << "\n";
      return kOk;
    }
    if (*plugins) {
      std::vector<rpc::PluginInfo> shown;
      std::vector<std::string> not_loaded;
      if (!describe.empty()) {
        shown.emplace_back();
        client.describe_plugin(shown.back(), describe);
      } else {
        rpc::PluginList list;
        client.plugins(list);
        shown = list.plugins;
        not_loaded = list.not_loaded;
      }
      json out = json::array();
      std::string text;
      for (const auto& p : shown) {
        out.push_back(ctl::to_json(p));
        text += ctl::plugin_text(p) + "\n";
      }
      print(g, describe.empty() ? json{{"plugins", out}, {"not_loaded", not_loaded}} : out[0], text);
      if (!json_output(g))
        for (const std::string& e : not_loaded) std::cerr << "not loaded: " << e << "\n";
      return kOk;
    }
    if (app.got_subcommand("health")) {
      rpc::Health health;
      client.health(health);
      print(g, ctl::to_json(health), ctl::health_text(health));
      return kOk;
    }
    if (*log) return follow_log(g, client, name, limit, follow);
    return kUsage;
  } catch (const Failure& f) {
    std::cerr << "distillctl: " << f.message << "\n";
    return f.code;
  } catch (const rpc::InvalidPipeline& e) {
    if (json_output(g)) {
      json out = json::array();
      for (const auto& d : e.diagnostics) out.push_back(ctl::to_json(d));
      std::cout << json{{"error", e.message}, {"diagnostics", out}}.dump(2) << "\n";
    }
    for (const auto& d : e.diagnostics) std::cerr << d.text << "\n";
    std::cerr << e.diagnostics.size() << (e.diagnostics.size() == 1 ? " error" : " errors") << " in " << file << "\n";
    return kInvalid;
  } catch (const rpc::OperationError& e) {
    std::cerr << "distillctl: " << e.message << "\n";
    if (e.kind == rpc::ErrorKind::UNAUTHENTICATED) return kUnauthenticated;
    return e.kind == rpc::ErrorKind::NOT_FOUND ? kNotFound : e.kind == rpc::ErrorKind::INVALID ? kUsage : kRefused;
  } catch (const apache::thrift::TException& e) {
    std::cerr << "distillctl: the connection to the daemon failed: " << e.what() << "\n";
    return kNoDaemon;
  }
}
