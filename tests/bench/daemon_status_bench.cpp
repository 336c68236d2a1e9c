// tests/bench/daemon_control.sh's client side: N threads, each with its own
// connection to a daemon's control socket, call status(PIPELINE) in a loop
// until the pipeline leaves `running` (or for --seconds), and the latency
// of every call is reported as p50 / p99 / max and calls per second.
// --interval-ms paces each client (0: as fast as the daemon answers).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "rpc/wire.h"

namespace {

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto at = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[at];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"poll a daemon's status() from several clients and report the latency"};
  std::string socket;
  std::string pipeline;
  int clients = 8;
  double seconds = 0;
  int interval_ms = 10;
  app.add_option("--socket", socket, "the daemon's control.sock")->required();
  app.add_option("--pipeline", pipeline, "the pipeline to ask about")->required();
  app.add_option("--clients", clients, "polling connections")->capture_default_str();
  app.add_option("--interval-ms", interval_ms, "pause between two calls of a client")->capture_default_str();
  app.add_option("--seconds", seconds, "stop after this long (default: when the pipeline stops running)");
  CLI11_PARSE(app, argc, argv);

  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
  std::vector<std::thread> threads;
  const Clock::time_point began = Clock::now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      distill::rpc::Connection<distill::rpc::DistillClient> connection(socket, std::chrono::seconds(10));
      distill::rpc::PipelineStatus status;
      while (!done) {
        const Clock::time_point start = Clock::now();
        try {
          connection.client().status(status, pipeline);
        } catch (const distill::rpc::OperationError& e) {
          std::fprintf(stderr, "status() failed: %s\n", e.message.c_str());
          ++failures;
          continue;
        }
        latencies[static_cast<std::size_t>(i)].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        const bool running = status.info.state == distill::rpc::PipelineState::RUNNING ||
                             status.info.state == distill::rpc::PipelineState::STARTING;
        const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
        if ((seconds > 0 && elapsed >= seconds) || (seconds <= 0 && !running)) done = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
  std::vector<double> all;
  for (const auto& one : latencies) all.insert(all.end(), one.begin(), one.end());
  std::sort(all.begin(), all.end());
  std::printf("%d clients, %zu status calls in %.1f s (%.0f/s): p50 %.3f ms, p99 %.3f ms, max %.3f ms; %d failed\n",
              clients, all.size(), elapsed, static_cast<double>(all.size()) / elapsed, percentile(all, 0.50),
              percentile(all, 0.99), all.empty() ? 0.0 : all.back(), failures.load());
  return failures == 0 ? 0 : 1;
}
