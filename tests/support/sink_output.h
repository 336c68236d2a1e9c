// What a jsonl sink wrote, for tests that compare two runs: every line of
// the shards in `out` (part-*, in order; then the rejects files when asked),
// parsed, without what differs from call to call to the teacher: the
// arrival time and the request id of each record's provenance.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "test_dir.h"

namespace distill::testing {

inline std::vector<nlohmann::json> sink_records(const std::filesystem::path& out, bool with_rejects = false) {
  std::vector<nlohmann::json> lines;
  if (!std::filesystem::exists(out)) return lines;
  for (const auto& [name, content] : read_dir(out)) {
    if (!name.starts_with("part-") && !(with_rejects && name.starts_with("rejects-"))) continue;
    std::istringstream in(content);
    for (std::string line; std::getline(in, line);) {
      nlohmann::json entry = nlohmann::json::parse(line);
      nlohmann::json& record = entry.contains("record") ? entry["record"] : entry;  // a reject wraps its record
      if (record.contains("provenance")) {
        record["provenance"].erase("collected_at_ms");
        record["provenance"].erase("request_id");
      }
      lines.push_back(std::move(entry));
    }
  }
  return lines;
}

}  // namespace distill::testing
