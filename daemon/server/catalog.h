// The daemon's own RocksDB database (<state>/daemon): every submitted
// pipeline with its state, and every revision of its file. What a
// restarted daemon reads to carry on where the last one stopped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rpc/distill_types.h"
#include "store/store.h"

namespace distill::server {

struct PipelineRecord {
  std::string name;
  std::int64_t revision = 0;  // the current one
  rpc::PipelineState::type state = rpc::PipelineState::SUBMITTED;
  // While STOPPING: the state it stops into (PAUSED or STOPPED).
  rpc::PipelineState::type stop_target = rpc::PipelineState::STOPPED;
  std::string error;
  int consecutive_crashes = 0;
  std::int64_t run = 0;
  std::string description;
  std::string file;  // where the current revision was submitted from
  std::int64_t submitted_ms = 0;
  std::int64_t updated_ms = 0;
};

struct Revision {
  std::string yaml;
  std::string file;
  std::int64_t submitted_ms = 0;
};

class Catalog {
 public:
  // Opens (or creates) the database in `dir`; throws store::StoreError,
  // e.g. when another daemon holds it.
  explicit Catalog(const std::filesystem::path& dir);

  std::vector<PipelineRecord> pipelines() const;
  void put(const PipelineRecord& record);
  // The record and its new revision, in one write.
  void put(const PipelineRecord& record, const Revision& revision);
  std::optional<Revision> revision(const std::string& name, std::int64_t revision) const;
  // The record and every revision.
  void erase(const std::string& name);

 private:
  std::unique_ptr<store::Store> store_;
};

}  // namespace distill::server
