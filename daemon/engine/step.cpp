// Step counters and the Context each plugin instance is given.
#include "engine/step.h"

#include <stdexcept>

#include "store/keys.h"

namespace distill::engine {
namespace {

// A step's log lines go to its run's log, marked with the step's name.
class StepLogger : public Logger {
 public:
  StepLogger(RunLog& log, std::string step) : log_(log), step_(std::move(step)) {}
  void info(std::string_view message) override { log_.add("info", step_, message); }
  void warn(std::string_view message) override { log_.add("warning", step_, message); }
  void error(std::string_view message) override { log_.add("error", step_, message); }

 private:
  RunLog& log_;
  std::string step_;
};

std::string state_prefix(const std::string& pipeline, const std::string& step) {
  std::string prefix;
  store::append_text(prefix, pipeline);
  store::append_text(prefix, step);
  return prefix;
}

}  // namespace

std::int64_t StepCounters::count_drop(const std::string& reason) {
  dropped.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  return reasons_[reason]++;
}

std::atomic<std::int64_t>& StepCounters::custom(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = custom_.find(name);
  if (it == custom_.end())
    it = custom_.emplace(std::string(name), std::make_unique<std::atomic<std::int64_t>>(0)).first;
  return *it->second;
}

void StepCounters::set_gauge(std::string_view name, double value) {
  std::lock_guard lock(mutex_);
  auto it = gauges_.find(name);
  if (it == gauges_.end())
    gauges_.emplace(std::string(name), value);
  else
    it->second = value;
}

void StepCounters::set_table(Table table) {
  for (std::size_t i = 0; i < table.rows.size(); ++i)
    if (table.rows[i].size() != table.columns.size())
      throw std::invalid_argument("table '" + table.name + "': row " + std::to_string(i + 1) + " has " +
                                  std::to_string(table.rows[i].size()) + " cells for " +
                                  std::to_string(table.columns.size()) + " columns");
  std::lock_guard lock(mutex_);
  const std::string name = table.name;
  tables_.insert_or_assign(name, std::move(table));
}

StepStats StepCounters::snapshot(const std::string& step, const std::string& plugin) const {
  StepStats stats;
  stats.step = step;
  stats.plugin = plugin;
  stats.records_in = in.load();
  stats.kept = kept.load();
  stats.dropped = dropped.load();
  stats.errors = errors.load();
  stats.busy_ns = busy_ns.load();
  std::lock_guard lock(mutex_);
  stats.drops_by_reason.assign(reasons_.begin(), reasons_.end());
  for (const auto& [name, value] : custom_) stats.counters.emplace_back(name, value->load());
  stats.gauges.assign(gauges_.begin(), gauges_.end());
  for (const auto& [name, table] : tables_) stats.tables.push_back(table);
  return stats;
}

void StepCounters::restore(const StepStats& saved) {
  in = saved.records_in;
  kept = saved.kept;
  dropped = saved.dropped;
  errors = saved.errors;
  busy_ns = saved.busy_ns;
  std::lock_guard lock(mutex_);
  reasons_.clear();
  for (const auto& [reason, count] : saved.drops_by_reason) reasons_[reason] = count;
  for (const auto& [name, value] : saved.counters)
    custom_[name] = std::make_unique<std::atomic<std::int64_t>>(value);
  gauges_.clear();
  for (const auto& [name, value] : saved.gauges) gauges_[name] = value;
  tables_.clear();
  for (const Table& table : saved.tables) tables_[table.name] = table;
}

StepContext::StepContext(RunServices& run, const spec::StepSpec& spec, RunInfo info, StepCounters& counters)
    : run_(run),
      spec_(spec),
      info_(std::move(info)),
      counters_(counters),
      state_(run.store(), state_prefix(info_.pipeline, spec.name)),
      logger_(std::make_unique<StepLogger>(run.log(), spec.name)) {}

KeyValue& StepContext::shared(std::string_view name) {
  std::lock_guard lock(shared_mutex_);
  auto it = shared_.find(name);
  if (it == shared_.end()) it = shared_.emplace(std::string(name), run_.open_shared(name)).first;
  return *it->second;
}

}  // namespace distill::engine
