// How control-plane bytes travel: the framed binary protocol on a UNIX
// socket with the limits that make hostile frames harmless (the server's
// factories, the client's connection), and the reports a worker process
// sends its daemon over a pipe (the same IDL structs, framed the same way).
#pragma once

#include <thrift/TConfiguration.h>
#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TTransport.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "rpc/Distill.h"

namespace distill::rpc {

// No request or answer comes near these: a pipeline file is at most 1 MiB,
// samples and logs are paged. A frame announcing more is refused before
// anything is allocated for it.
constexpr int kMaxFrameBytes = 4 << 20;
constexpr int kMaxStringBytes = 2 << 20;
constexpr int kMaxContainerItems = 100000;

std::shared_ptr<apache::thrift::TConfiguration> wire_limits();
std::shared_ptr<apache::thrift::transport::TTransportFactory> framed_transport_factory();
std::shared_ptr<apache::thrift::protocol::TProtocolFactory> binary_protocol_factory();

// A client connected to the daemon's socket. Throws
// apache::thrift::transport::TTransportException when nothing answers there.
class Connection {
 public:
  Connection(const std::string& socket_path, std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  DistillClient& client() { return *client_; }

 private:
  std::shared_ptr<apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<DistillClient> client_;
};

// A worker's report: its run's status, or one of its log lines.
struct WorkerReport {
  std::optional<PipelineStatus> status;
  std::optional<LogLine> log;
};

std::string encode_report(const PipelineStatus& status);
std::string encode_report(const LogLine& line);

// Cuts the bytes read from a worker's pipe into reports.
class ReportReader {
 public:
  void feed(const char* bytes, std::size_t size) { pending_.append(bytes, size); }
  // The next complete report, or nullopt until more bytes arrive. Throws
  // std::runtime_error on bytes that are no report (the pipe is then useless).
  std::optional<WorkerReport> next();

 private:
  std::string pending_;
};

}  // namespace distill::rpc
