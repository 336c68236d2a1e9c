// The Thrift service (rpc::DistillIf) over the Controller: each call is
// passed on, and an error the controller did not expect becomes an
// OperationError (INTERNAL) instead of a broken connection. A handler of a
// TCP connection (one per connection, made by TcpHandlerFactory) refuses
// every call until authenticate() has been given the daemon's token.
#pragma once

#include <optional>
#include <string>

#include "rpc/Distill.h"
#include "server/controller.h"

namespace distill::server {

class Handler : public rpc::DistillIf {
 public:
  // `token`: the secret a connection must present first; none: trusted
  // (the UNIX socket, whose file mode is the access control).
  explicit Handler(Controller& controller, std::optional<std::string> token = std::nullopt)
      : controller_(controller), token_(std::move(token)), authenticated_(!token_) {}

  void authenticate(const std::string& token) override;

  void submit(rpc::SubmitResult& out, const rpc::SubmitRequest& request) override;
  void validate(rpc::ValidateResult& out, const std::string& yaml, const std::string& file) override;
  void start(rpc::PipelineInfo& out, const std::string& name, const rpc::StartOptions& options) override;
  void pause(rpc::PipelineInfo& out, const std::string& name) override;
  void resume(rpc::PipelineInfo& out, const std::string& name) override;
  void stop(rpc::PipelineInfo& out, const std::string& name) override;
  void delete_pipeline(const std::string& name) override;
  void list_pipelines(std::vector<rpc::PipelineInfo>& out) override;
  void status(rpc::PipelineStatus& out, const std::string& name) override;
  void samples(std::vector<rpc::Sample>& out, const rpc::SampleQuery& query) override;
  void plugins(rpc::PluginList& out) override;
  void describe_plugin(rpc::PluginInfo& out, const std::string& name) override;
  void health(rpc::Health& out) override;
  void rescan_plugins(rpc::RescanResult& out) override;
  void run_log(std::vector<rpc::LogLine>& out, const std::string& name, std::int64_t after_seq,
               std::int32_t limit) override;

 private:
  template <class F>
  void guarded(F&& call);

  Controller& controller_;
  const std::optional<std::string> token_;
  bool authenticated_;  // one connection's handler: used by one thread at a time
};

class TcpHandlerFactory : public rpc::DistillIfFactory {
 public:
  TcpHandlerFactory(Controller& controller, std::string token) : controller_(controller), token_(std::move(token)) {}
  rpc::DistillIf* getHandler(const apache::thrift::TConnectionInfo&) override {
    return new server::Handler(controller_, token_);  // not the base's Handler typedef
  }
  void releaseHandler(rpc::DistillIf* handler) override { delete handler; }

 private:
  Controller& controller_;
  const std::string token_;
};

}  // namespace distill::server
