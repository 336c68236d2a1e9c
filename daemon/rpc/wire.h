// How control-plane bytes travel: the framed binary protocol on a UNIX
// socket with the limits that make hostile frames harmless (the servers'
// factories, the clients' connections), and the reports a worker process
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
#include "rpc/SharedState.h"

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

// A framed, limited connection to a UNIX socket. Throws
// apache::thrift::transport::TTransportException when nothing answers there.
std::shared_ptr<apache::thrift::protocol::TProtocol> open_socket(const std::string& socket_path,
                                                                 std::chrono::milliseconds timeout);
// The same on TCP (distilld serve --tcp).
std::shared_ptr<apache::thrift::protocol::TProtocol> open_tcp(const std::string& host, int port,
                                                              std::chrono::milliseconds timeout);
void close_quietly(apache::thrift::protocol::TProtocol& protocol);

// A client (DistillClient, SharedStateClient) connected to one of the daemon's sockets.
template <class Client>
class Connection {
 public:
  Connection(const std::string& socket_path, std::chrono::milliseconds timeout)
      : client_(open_socket(socket_path, timeout)) {}
  explicit Connection(std::shared_ptr<apache::thrift::protocol::TProtocol> protocol) : client_(std::move(protocol)) {}
  ~Connection() { close_quietly(*client_.getOutputProtocol()); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Client& client() { return client_; }

 private:
  Client client_;
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
