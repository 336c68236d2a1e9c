// Human-readable run reports: the live progress block that `distilld run`
// redraws, and the summary table printed when a run ends.
#pragma once

#include <string>

#include "engine/run.h"

namespace distill::cli {

// A few lines: overall progress bar, then one line per step with the newest
// rows of its plugin's tables.
std::string progress_block(const engine::RunSnapshot& snapshot);
// The end-of-run summary: status, throughput, and per-step counters with
// drop reasons, the plugin's counters, gauges and tables.
std::string summary(const engine::RunSnapshot& snapshot);
// 1234567 -> "1,234,567"
std::string with_commas(std::int64_t value);

}  // namespace distill::cli
