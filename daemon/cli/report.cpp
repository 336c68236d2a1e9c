// Formatting of run snapshots for terminals and logs.
#include "cli/report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace distill::cli {
namespace {

// Rows of a plugin's table that the redrawn progress block shows (the newest).
constexpr std::size_t kLiveRows = 8;

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string bar(double fraction, int width) {
  const int filled = static_cast<int>(fraction * width + 0.5);
  return "[" + std::string(filled, '#') + std::string(width - filled, '-') + "]";
}

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

std::string lpad(std::string text, std::size_t width) {
  if (text.size() < width) text.insert(0, width - text.size(), ' ');
  return text;
}

// Four significant digits: a loss of 0.01234 and a rate of 12,345 both read well.
std::string gauge_text(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.4g", value);
  return buffer;
}

bool is_number(const std::string& cell) {
  return !cell.empty() && cell.find_first_not_of("0123456789,.") == std::string::npos;
}

// A row's cell in column `c`; empty past its end (a table from an RPC peer
// has not been through the engine's check).
std::string cell(const std::vector<std::string>& row, std::size_t c) { return c < row.size() ? row[c] : ""; }

// A plugin's table under its step: a heading line, then the rows with
// aligned columns (numbers to the right). Past `max_rows` only the last
// rows are shown, after a line saying how many are left out.
std::string table_text(const Table& table, std::size_t indent, std::size_t max_rows) {
  const std::size_t first = table.rows.size() > max_rows ? table.rows.size() - max_rows : 0;
  std::vector<std::size_t> widths;
  std::vector<bool> numeric;
  for (const std::string& column : table.columns) {
    widths.push_back(column.size());
    numeric.push_back(first < table.rows.size());
  }
  for (std::size_t r = first; r < table.rows.size(); ++r)
    for (std::size_t c = 0; c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], cell(table.rows[r], c).size());
      numeric[c] = numeric[c] && is_number(cell(table.rows[r], c));
    }
  const std::string margin(indent, ' ');
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text = margin + "  ";
    for (std::size_t c = 0; c < widths.size(); ++c)
      text += (c ? "  " : "") + (numeric[c] ? lpad(cell(cells, c), widths[c]) : pad(cell(cells, c), widths[c]));
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text + "\n";
  };
  std::string out = margin + table.name + " (" + with_commas(static_cast<std::int64_t>(table.rows.size())) + "):\n";
  out += line(table.columns);
  if (first > 0) out += margin + "  (" + with_commas(static_cast<std::int64_t>(first)) + " earlier rows not shown)\n";
  for (std::size_t r = first; r < table.rows.size(); ++r) out += line(table.rows[r]);
  return out;
}

std::string reasons(const StepStats& step) {
  std::string out;
  for (const auto& [reason, count] : step.drops_by_reason) out += (out.empty() ? "" : ", ") + reason + " " + with_commas(count);
  return out;
}

}  // namespace

std::string with_commas(std::int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<std::size_t>(i), ",");
  return value < 0 ? "-" + digits : digits;
}

// "45 s", "12 min", "3.5 h": how long the rest of the input takes at this
// execution's rate so far.
std::string eta_text(double seconds) {
  if (seconds < 90) return fixed(seconds, 0) + " s";
  if (seconds < 90 * 60) return fixed(seconds / 60, 0) + " min";
  return fixed(seconds / 3600, 1) + " h";
}

std::string progress_block(const engine::RunSnapshot& s) {
  std::ostringstream out;
  const double mb = static_cast<double>(s.bytes_read_here) / 1e6;
  out << "run " << s.run << " of " << s.pipeline << "  ";
  if (s.source_progress.total > 0) {
    const double fraction = static_cast<double>(s.source_progress.done) / static_cast<double>(s.source_progress.total);
    out << bar(fraction, 30) << " " << fixed(100 * fraction, 1) << "%  ";
  }
  out << with_commas(s.records_read) << " records  ";
  if (s.elapsed_s > 0) out << fixed(mb / s.elapsed_s, 1) << " MB/s  ";
  out << fixed(s.elapsed_s, 0) << " s";
  const auto left = static_cast<double>(s.source_progress.total) - static_cast<double>(s.source_progress.done);
  if (s.source_progress.total > 0 && left > 0 && s.bytes_read_here > 0 && s.elapsed_s > 1)
    out << "  ETA " << eta_text(left / (static_cast<double>(s.bytes_read_here) / s.elapsed_s));
  out << "\n";
  for (const StepStats& step : s.steps) {
    out << "  " << pad(step.step, 20) << " in " << lpad(with_commas(step.records_in), 12) << "  kept "
        << lpad(with_commas(step.kept), 12);
    if (step.dropped) out << "  dropped " << with_commas(step.dropped) << " (" << reasons(step) << ")";
    out << "\n";
    for (const Table& table : step.tables) out << table_text(table, 4, kLiveRows);
  }
  if (!s.finishing_step.empty()) {
    out << "  finishing " << s.finishing_step;
    if (s.finish_total > 0)
      out << " " << bar(s.finish_done / s.finish_total, 20) << " " << fixed(s.finish_done, 0) << "/"
          << fixed(s.finish_total, 0) << " " << s.finish_unit;
    else if (!s.finish_unit.empty())
      out << ": " << s.finish_unit;
    out << "\n";
    for (const StepStats& step : s.steps)
      if (step.step == s.finishing_step && !step.gauges.empty()) {
        out << "   ";
        for (const auto& [name, value] : step.gauges) out << " " << name << " " << gauge_text(value);
        out << "\n";
      }
  }
  return out.str();
}

std::string summary(const engine::RunSnapshot& s) {
  std::ostringstream out;
  out << "run " << s.run << " of pipeline '" << s.pipeline << "' ";
  if (s.already_completed) {
    out << "had already completed: nothing to do (--new-run starts run " << s.run + 1
        << "; its input is deduped against earlier runs)\n";
  } else {
    out << store::to_string(s.status);
    if (s.resumed) out << " (resumed from its checkpoint)";
    out << " after " << fixed(s.elapsed_s, 1) << " s: ";
  }
  out << with_commas(s.records_read) << " records read";
  if (s.elapsed_s > 0 && !s.already_completed) {
    out << " (" << with_commas(static_cast<std::int64_t>(static_cast<double>(s.records_read_here) / s.elapsed_s))
        << " records/s";
    if (s.bytes_read_here) out << ", " << fixed(static_cast<double>(s.bytes_read_here) / 1e6 / s.elapsed_s, 1) << " MB/s";
    out << ")";
  }
  if (s.checkpoints > 0) out << ", " << s.checkpoints << " checkpoints";
  out << "\n";
  if (!s.error.empty()) out << "error: " << s.error << "\n";
  out << pad("step", 22) << pad("plugin", 16) << lpad("in", 12) << lpad("kept", 12) << lpad("dropped", 10)
      << lpad("errors", 8) << lpad("busy s", 9) << "\n";
  for (const StepStats& step : s.steps) {
    out << pad(step.step, 22) << pad(step.plugin, 16) << lpad(with_commas(step.records_in), 12)
        << lpad(with_commas(step.kept), 12) << lpad(with_commas(step.dropped), 10)
        << lpad(with_commas(step.errors), 8) << lpad(fixed(static_cast<double>(step.busy_ns) / 1e9, 2), 9) << "\n";
    for (const auto& [reason, count] : step.drops_by_reason)
      out << "    dropped " << pad(reason, 28) << lpad(with_commas(count), 12) << "\n";
    for (const auto& [name, value] : step.counters) out << "    " << pad(name, 36) << lpad(with_commas(value), 12) << "\n";
    for (const auto& [name, value] : step.gauges) out << "    " << pad(name, 36) << lpad(gauge_text(value), 12) << "\n";
    for (const Table& table : step.tables) out << table_text(table, 4, table.rows.size());
  }
  return out.str();
}

}  // namespace distill::cli
