// Thrift transports, protocols and limits of the control plane, and the
// framing of worker reports.
#include "rpc/wire.h"

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include <stdexcept>

namespace distill::rpc {
namespace {

using apache::thrift::TConfiguration;
using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::transport::TFramedTransport;
using apache::thrift::transport::TMemoryBuffer;
using apache::thrift::transport::TTransport;

class LimitedFramedTransportFactory : public apache::thrift::transport::TTransportFactory {
 public:
  std::shared_ptr<TTransport> getTransport(std::shared_ptr<TTransport> transport) override {
    return std::make_shared<TFramedTransport>(transport, wire_limits());
  }
};

constexpr char kStatusTag = 'S';
constexpr char kLogTag = 'L';

template <class T>
std::string encode(char tag, const T& value) {
  auto buffer = std::make_shared<TMemoryBuffer>();
  TBinaryProtocol protocol(buffer);
  value.write(&protocol);
  const std::string body = buffer->getBufferAsString();
  const std::uint32_t size = static_cast<std::uint32_t>(body.size() + 1);
  std::string frame;
  for (int shift = 24; shift >= 0; shift -= 8) frame.push_back(static_cast<char>((size >> shift) & 0xff));
  frame.push_back(tag);
  return frame + body;
}

template <class T>
T decode(const std::string& bytes) {
  auto buffer = std::make_shared<TMemoryBuffer>(reinterpret_cast<std::uint8_t*>(const_cast<char*>(bytes.data())),
                                                static_cast<std::uint32_t>(bytes.size()));
  TBinaryProtocol protocol(buffer, kMaxStringBytes, kMaxContainerItems, false, true);
  T value;
  value.read(&protocol);
  return value;
}

}  // namespace

std::shared_ptr<TConfiguration> wire_limits() {
  static const auto limits = std::make_shared<TConfiguration>(kMaxFrameBytes, kMaxFrameBytes);
  return limits;
}

std::shared_ptr<apache::thrift::transport::TTransportFactory> framed_transport_factory() {
  return std::make_shared<LimitedFramedTransportFactory>();
}

std::shared_ptr<apache::thrift::protocol::TProtocolFactory> binary_protocol_factory() {
  return std::make_shared<apache::thrift::protocol::TBinaryProtocolFactory>(kMaxStringBytes, kMaxContainerItems,
                                                                            false, true);
}

namespace {

std::shared_ptr<apache::thrift::protocol::TProtocol> open_framed(
    std::shared_ptr<apache::thrift::transport::TSocket> socket, std::chrono::milliseconds timeout) {
  socket->setConnTimeout(static_cast<int>(timeout.count()));
  socket->setRecvTimeout(static_cast<int>(timeout.count()));
  socket->setSendTimeout(static_cast<int>(timeout.count()));
  auto transport = std::make_shared<TFramedTransport>(socket, wire_limits());
  transport->open();
  return std::make_shared<TBinaryProtocol>(transport, kMaxStringBytes, kMaxContainerItems, false, true);
}

}  // namespace

std::shared_ptr<apache::thrift::protocol::TProtocol> open_socket(const std::string& socket_path,
                                                                 std::chrono::milliseconds timeout) {
  return open_framed(std::make_shared<apache::thrift::transport::TSocket>(socket_path, wire_limits()), timeout);
}

std::shared_ptr<apache::thrift::protocol::TProtocol> open_tcp(const std::string& host, int port,
                                                              std::chrono::milliseconds timeout) {
  return open_framed(std::make_shared<apache::thrift::transport::TSocket>(host, port, wire_limits()), timeout);
}

void close_quietly(apache::thrift::protocol::TProtocol& protocol) {
  try {
    protocol.getTransport()->close();
  } catch (const std::exception&) {
    // Closing a broken connection: nothing left to do.
  }
}

std::string encode_report(const PipelineStatus& status) { return encode(kStatusTag, status); }
std::string encode_report(const LogLine& line) { return encode(kLogTag, line); }

std::optional<WorkerReport> ReportReader::next() {
  if (pending_.size() < 4) return std::nullopt;
  std::uint32_t size = 0;
  for (int i = 0; i < 4; ++i) size = (size << 8) | static_cast<unsigned char>(pending_[static_cast<std::size_t>(i)]);
  if (size == 0 || size > static_cast<std::uint32_t>(kMaxFrameBytes))
    throw std::runtime_error("a worker report of " + std::to_string(size) + " bytes");
  if (pending_.size() < 4 + static_cast<std::size_t>(size)) return std::nullopt;
  const char tag = pending_[4];
  const std::string body = pending_.substr(5, size - 1);
  pending_.erase(0, 4 + static_cast<std::size_t>(size));
  WorkerReport report;
  if (tag == kStatusTag)
    report.status = decode<PipelineStatus>(body);
  else if (tag == kLogTag)
    report.log = decode<LogLine>(body);
  else
    throw std::runtime_error(std::string("a worker report tagged '") + tag + "'");
  return report;
}

}  // namespace distill::rpc
