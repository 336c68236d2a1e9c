// Runs, checkpoints and drop samples as they are kept in the store: the
// typed records, their JSON encoding, and their keys.
#pragma once

#include <distill/plugin.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace distill::store {

enum class RunStatus { Running, Stopped, Failed, Completed };
const char* to_string(RunStatus status);

struct RunMeta {
  std::uint64_t run = 0;
  RunStatus status = RunStatus::Running;
  std::string fingerprint;  // of the pipeline's plugins and parameters
  std::int64_t started_ms = 0;
  std::int64_t ended_ms = 0;
  std::string error;
};

// Everything up to `position` is processed by every step and committed by every sink.
struct Checkpoint {
  std::string position;
  std::int64_t records_read = 0;
  std::vector<StepStats> steps;
};

struct DropSample {
  std::string step;
  std::string reason;
  std::uint64_t seq = 0;     // the drop's ordinal within (step, reason)
  std::string record_json;   // distill::to_json_text of the record as dropped
};

class RunStore {
 public:
  explicit RunStore(Store& store) : store_(store) {}

  std::optional<RunMeta> latest_run(const std::string& pipeline) const;
  std::vector<RunMeta> runs(const std::string& pipeline) const;
  std::optional<Checkpoint> checkpoint(const std::string& pipeline, std::uint64_t run) const;

  void put_meta(WriteSet& writes, const std::string& pipeline, const RunMeta& meta) const;
  void put_checkpoint(WriteSet& writes, const std::string& pipeline, std::uint64_t run,
                      const Checkpoint& checkpoint) const;
  void put_drop(WriteSet& writes, const std::string& pipeline, std::uint64_t run,
                std::uint32_t step_index, const DropSample& sample) const;
  // Drop samples of a run in step order, then reason, then seq; empty filters match all.
  std::vector<DropSample> drops(const std::string& pipeline, std::uint64_t run, const std::string& step,
                                const std::string& reason, std::size_t limit) const;

 private:
  Store& store_;
};

}  // namespace distill::store
