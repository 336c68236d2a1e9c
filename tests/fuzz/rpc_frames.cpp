// Fuzz target: the daemon's control plane fed raw bytes as one client
// connection sends them: the framed transport and binary protocol with the
// limits of daemon/rpc/wire.h, over a TMemoryBuffer, into
// rpc::DistillProcessor with the UNIX socket's (trusted) Handler on a
// Controller in a temporary state folder. Calls are processed until the
// bytes run out or a frame is refused, as TThreadedServer serves a
// connection. No worker ever runs: the Controller's distilld binary does
// not exist, so a started pipeline fails to start and waits an hour to
// retry. The Controller and its state live across inputs, as a daemon's do,
// so the heap legitimately grows between inputs: run.sh turns off
// libFuzzer's per-input leak check for this target (it rescanned the whole
// heap after most inputs); LeakSanitizer still checks at exit. Thrift's
// own messages about refused frames are silenced, as the daemon routes
// them to its log.
#include <thrift/Thrift.h>
#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "fuzz_check.h"
#include "rpc/wire.h"
#include "server/controller.h"
#include "server/handler.h"

namespace {

using apache::thrift::transport::TMemoryBuffer;
using distill::fuzz::require;
namespace fs = std::filesystem;

struct Daemon {
  fs::path state_dir;
  std::unique_ptr<distill::server::Controller> controller;
  std::unique_ptr<distill::rpc::DistillProcessor> processor;

  Daemon() {
    std::string dir = (fs::temp_directory_path() / "distilld-fuzz-rpc-XXXXXX").string();
    require(::mkdtemp(dir.data()) != nullptr, "a temporary state folder");
    state_dir = dir;
    distill::server::ControllerOptions options;
    options.state_dir = state_dir;
    options.grace = std::chrono::milliseconds(0);
    options.first_restart_delay = std::chrono::hours(1);
    options.distilld = state_dir / "no-such-distilld";
    controller = std::make_unique<distill::server::Controller>(options);
    processor = std::make_unique<distill::rpc::DistillProcessor>(
        std::make_shared<distill::server::Handler>(*controller));
  }
  ~Daemon() {
    controller.reset();
    std::error_code ignored;
    fs::remove_all(state_dir, ignored);
  }
};

Daemon& daemon() {
  static Daemon running;
  return running;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
  daemon();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto received = std::make_shared<TMemoryBuffer>(const_cast<std::uint8_t*>(data), static_cast<std::uint32_t>(size));
  auto sent = std::make_shared<TMemoryBuffer>();
  const auto in = distill::rpc::binary_protocol_factory()->getProtocol(
      distill::rpc::framed_transport_factory()->getTransport(received));
  const auto out = distill::rpc::binary_protocol_factory()->getProtocol(
      distill::rpc::framed_transport_factory()->getTransport(sent));
  try {
    while (daemon().processor->process(in, out, nullptr) && in->getTransport()->peek()) {
    }
  } catch (const apache::thrift::TException&) {
    // A malformed, oversized or cut-off frame ends the connection, as in the server.
  }
  return 0;
}
