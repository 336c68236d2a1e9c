// The daemon's Prometheus endpoint (opt-in: `distilld serve --metrics-port`):
// GET /metrics on 127.0.0.1 answers the text exposition format (0.0.4)
// with every pipeline's state and run, each step's records in / kept /
// dropped by reason, the plugins' own counters and gauges, and the
// teacher's requests and cost. Figures are those of each pipeline's
// current (or last) run, as `distillctl status` shows them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rpc/distill_types.h"

namespace distill::server {

class Controller;

// The exposition text for these pipelines and this health (pure: tested alone).
std::string render_metrics(const rpc::Health& health, const std::vector<rpc::PipelineStatus>& pipelines);

class MetricsServer {
 public:
  // Listens on 127.0.0.1:`port` (0: any free port); throws std::runtime_error
  // when it cannot.
  MetricsServer(Controller& controller, int port);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace distill::server
