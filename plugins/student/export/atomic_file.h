// A file that appears whole or not at all: bytes go to a temp file beside
// the target, commit() fsyncs it, renames it over the target and fsyncs the
// folder. Dropped without commit(), the temp file is removed.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "output_file.h"

namespace distill::student {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void append(std::string_view bytes);
  std::uint64_t size() const { return out_->size(); }
  void commit();

 private:
  [[noreturn]] void fail(const std::exception& cause) const;

  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::unique_ptr<io::OutputFile> out_;
  bool committed_ = false;
};

// Writes `bytes` to `target` atomically.
void write_file_atomically(const std::filesystem::path& target, std::string_view bytes);

}  // namespace distill::student
