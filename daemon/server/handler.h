// The Thrift service (rpc::DistillIf) over the Controller: each call is
// passed on, and an error the controller did not expect becomes an
// OperationError (INTERNAL) instead of a broken connection.
#pragma once

#include "rpc/Distill.h"
#include "server/controller.h"

namespace distill::server {

class Handler : public rpc::DistillIf {
 public:
  explicit Handler(Controller& controller) : controller_(controller) {}

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
  Controller& controller_;
};

}  // namespace distill::server
