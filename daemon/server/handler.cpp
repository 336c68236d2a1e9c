// Thrift calls passed on to the Controller.
#include "server/handler.h"

namespace distill::server {
namespace {

template <class F>
void guarded(F&& call) {
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

}  // namespace

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
void Handler::health(rpc::Health& out) { out = controller_.health(); }
void Handler::rescan_plugins(rpc::RescanResult& out) {
  guarded([&] { out = controller_.rescan_plugins(); });
}
void Handler::run_log(std::vector<rpc::LogLine>& out, const std::string& name, std::int64_t after_seq,
                      std::int32_t limit) {
  guarded([&] { out = controller_.run_log(name, after_seq, limit); });
}

}  // namespace distill::server
