// Thrift calls passed on to the Controller.
#include "server/handler.h"

#include <chrono>
#include <thread>

namespace distill::server {
namespace {

// Compares without an early exit, so the time taken says nothing of the
// token's characters (its length is public: 64 hex digits).
bool same_secret(const std::string& given, const std::string& secret) {
  if (given.size() != secret.size() || secret.empty()) return false;
  unsigned char differ = 0;
  for (std::size_t i = 0; i < given.size(); ++i) differ |= static_cast<unsigned char>(given[i] ^ secret[i]);
  return differ == 0;
}

rpc::OperationError unauthenticated(const std::string& message) {
  rpc::OperationError error;
  error.kind = rpc::ErrorKind::UNAUTHENTICATED;
  error.message = message;
  return error;
}

}  // namespace

void Handler::authenticate(const std::string& token) {
  if (!token_ || same_secret(token, *token_)) {
    authenticated_ = true;
    return;
  }
  // Slows down guessing (the token has 256 bits; this only makes noise rarer).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  throw unauthenticated("wrong token: give the text of the daemon's token file (distillctl --token-file FILE)");
}

template <class F>
void Handler::guarded(F&& call) {
  if (!authenticated_)
    throw unauthenticated("authenticate first: this TCP connection must call authenticate() with the daemon's token "
                          "(distillctl --token-file FILE)");
  try {
    call();
  } catch (const rpc::OperationError&) {
    throw;
  } catch (const rpc::InvalidPipeline&) {
    throw;
  } catch (const std::exception& e) {
    rpc::OperationError error;
    error.kind = rpc::ErrorKind::INTERNAL;
    error.message = std::string("the daemon failed: ") + e.what();
    throw error;
  }
}

void Handler::submit(rpc::SubmitResult& out, const rpc::SubmitRequest& request) {
  guarded([&] { out = controller_.submit(request); });
}
void Handler::validate(rpc::ValidateResult& out, const std::string& yaml, const std::string& file) {
  guarded([&] { out = controller_.validate(yaml, file); });
}
void Handler::start(rpc::PipelineInfo& out, const std::string& name, const rpc::StartOptions& options) {
  guarded([&] { out = controller_.start(name, options.new_run); });
}
void Handler::pause(rpc::PipelineInfo& out, const std::string& name) {
  guarded([&] { out = controller_.pause(name); });
}
void Handler::resume(rpc::PipelineInfo& out, const std::string& name) {
  guarded([&] { out = controller_.resume(name); });
}
void Handler::stop(rpc::PipelineInfo& out, const std::string& name) {
  guarded([&] { out = controller_.stop(name); });
}
void Handler::delete_pipeline(const std::string& name) {
  guarded([&] { controller_.remove(name); });
}
void Handler::list_pipelines(std::vector<rpc::PipelineInfo>& out) {
  guarded([&] { out = controller_.list(); });
}
void Handler::status(rpc::PipelineStatus& out, const std::string& name) {
  guarded([&] { out = controller_.status(name); });
}
void Handler::samples(std::vector<rpc::Sample>& out, const rpc::SampleQuery& query) {
  guarded([&] { out = controller_.samples(query); });
}
void Handler::plugins(rpc::PluginList& out) {
  guarded([&] { out = controller_.plugins(); });
}
void Handler::describe_plugin(rpc::PluginInfo& out, const std::string& name) {
  guarded([&] { out = controller_.describe_plugin(name); });
}
void Handler::health(rpc::Health& out) {
  guarded([&] { out = controller_.health(); });
}
void Handler::rescan_plugins(rpc::RescanResult& out) {
  guarded([&] { out = controller_.rescan_plugins(); });
}
void Handler::run_log(std::vector<rpc::LogLine>& out, const std::string& name, std::int64_t after_seq,
                      std::int32_t limit) {
  guarded([&] { out = controller_.run_log(name, after_seq, limit); });
}

}  // namespace distill::server
