// Prometheus text rendering of the controller's figures, and the loopback
// HTTP server that answers it.
#include "server/metrics.h"

#include <httplib.h>

#include <array>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <thread>

#include "rpc/convert.h"
#include "server/controller.h"

namespace distill::server {
namespace {

constexpr std::array<rpc::PipelineState::type, 8> kStates = {
    rpc::PipelineState::SUBMITTED, rpc::PipelineState::STARTING, rpc::PipelineState::RUNNING,
    rpc::PipelineState::STOPPING,  rpc::PipelineState::PAUSED,   rpc::PipelineState::STOPPED,
    rpc::PipelineState::COMPLETED, rpc::PipelineState::FAILED};

// A label value with \, " and newlines escaped as the format asks.
std::string escaped(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// Collects samples per metric so each family is written once, with its
// HELP and TYPE, whatever order the pipelines and steps come in.
class Exposition {
 public:
  void add(const std::string& metric, const std::string& type, const std::string& help, const Labels& labels,
           double value) {
    Family& family = families_[metric];
    family.type = type;
    family.help = help;
    std::string line = metric;
    if (!labels.empty()) {
      line += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i) line += ',';
        line += labels[i].first + "=\"" + escaped(labels[i].second) + '"';
      }
      line += '}';
    }
    family.samples.push_back(line + ' ' + number(value) + '\n');
  }
  std::string text() const {
    std::string out;
    for (const auto& [metric, family] : families_) {
      out += "# HELP " + metric + ' ' + family.help + '\n';
      out += "# TYPE " + metric + ' ' + family.type + '\n';
      for (const std::string& sample : family.samples) out += sample;
    }
    return out;
  }

 private:
  struct Family {
    std::string type, help;
    std::vector<std::string> samples;
  };
  std::map<std::string, Family> families_;
};

void add_step(Exposition& out, const std::string& pipeline, const rpc::StepStats& step) {
  const Labels labels = {{"pipeline", pipeline}, {"step", step.step}, {"plugin", step.plugin}};
  out.add("distilld_step_records_in_total", "counter", "Records that reached the step in the current run.", labels,
          static_cast<double>(step.records_in));
  out.add("distilld_step_kept_total", "counter", "Records the step passed on in the current run.", labels,
          static_cast<double>(step.kept));
  out.add("distilld_step_dropped_total", "counter", "Records the step dropped in the current run.", labels,
          static_cast<double>(step.dropped));
  out.add("distilld_step_errors_total", "counter", "Records the step failed on in the current run.", labels,
          static_cast<double>(step.errors));
  for (const auto& [reason, count] : step.drops_by_reason) {
    Labels with_reason = labels;
    with_reason.emplace_back("reason", reason);
    out.add("distilld_step_dropped_by_reason_total", "counter", "Records the step dropped, by reason.", with_reason,
            static_cast<double>(count));
  }
  for (const auto& [name, count] : step.counters) {
    Labels with_name = labels;
    with_name.emplace_back("counter", name);
    out.add("distilld_plugin_counter_total", "counter", "A plugin's own counter in the current run.", with_name,
            static_cast<double>(count));
  }
  for (const auto& [name, value] : step.gauges) {
    Labels with_name = labels;
    with_name.emplace_back("gauge", name);
    out.add("distilld_plugin_gauge", "gauge", "A plugin's latest value (e.g. a trainer's loss).", with_name, value);
  }
  if (step.plugin == "teacher") {
    const auto count = [&](const char* name) {
      const auto it = step.counters.find(name);
      return it == step.counters.end() ? 0.0 : static_cast<double>(it->second);
    };
    out.add("distilld_teacher_requests_total", "counter", "HTTP requests sent to the teacher (retries included).",
            labels, count("requests_sent"));
    out.add("distilld_teacher_answers_total", "counter", "Answers paid for (cache hits excluded).", labels,
            count("teacher_answers"));
    out.add("distilld_teacher_cache_hits_total", "counter", "Prompts answered from the teacher cache.", labels,
            count("cache_hits"));
    out.add("distilld_teacher_cost_usd_total", "counter", "What the teacher's answers cost, in US dollars.", labels,
            count("paid_cost_micro_usd") / 1e6);
  }
}

}  // namespace

std::string render_metrics(const rpc::Health& health, const std::vector<rpc::PipelineStatus>& pipelines) {
  Exposition out;
  out.add("distilld_up", "gauge", "1 while the daemon answers.", {{"version", health.version}}, 1);
  out.add("distilld_uptime_seconds", "gauge", "Seconds since the daemon started.", {}, health.uptime_s);
  out.add("distilld_workers", "gauge", "Worker processes running.", {}, health.workers);
  out.add("distilld_thread_budget", "gauge", "Threads shared by the running pipelines.", {}, health.thread_budget);
  for (const rpc::PipelineStatus& status : pipelines) {
    const std::string& name = status.info.name;
    for (rpc::PipelineState::type state : kStates)
      out.add("distilld_pipeline_state", "gauge", "1 for the pipeline's current state, 0 for the others.",
              {{"pipeline", name}, {"state", rpc::state_name(state)}}, status.info.state == state ? 1 : 0);
    out.add("distilld_pipeline_run", "gauge", "The pipeline's current (or last) run number.", {{"pipeline", name}},
            static_cast<double>(status.info.run));
    out.add("distilld_pipeline_records_read_total", "counter", "Records the source read in the current run.",
            {{"pipeline", name}}, static_cast<double>(status.info.records_read));
    out.add("distilld_pipeline_consecutive_crashes", "gauge", "Worker crashes in a row.", {{"pipeline", name}},
            status.info.consecutive_crashes);
    out.add("distilld_pipeline_progress_ratio", "gauge", "Share of the source's input done (-1: unknown).",
            {{"pipeline", name}}, status.info.progress);
    for (const rpc::StepStats& step : status.steps) add_step(out, name, step);
  }
  return out.text();
}

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
};

MetricsServer::MetricsServer(Controller& controller, int port) : impl_(std::make_unique<Impl>()) {
  impl_->server.Get("/metrics", [&controller](const httplib::Request&, httplib::Response& response) {
    std::vector<rpc::PipelineStatus> pipelines;
    for (const rpc::PipelineInfo& info : controller.list()) {
      try {
        pipelines.push_back(controller.status(info.name));
      } catch (const rpc::OperationError&) {
        // Deleted between list() and status(): not part of this scrape.
      }
    }
    response.set_content(render_metrics(controller.health(), pipelines), "text/plain; version=0.0.4");
  });
  if (port == 0) port_ = impl_->server.bind_to_any_port("127.0.0.1");
  else if (impl_->server.bind_to_port("127.0.0.1", port)) port_ = port;
  if (port_ <= 0) throw std::runtime_error("cannot listen for metrics on 127.0.0.1:" + std::to_string(port));
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace distill::server
