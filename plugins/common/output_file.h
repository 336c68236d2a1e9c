// An append-only output file whose durable length is tracked: writes are
// buffered, sync() makes them durable, and reopening truncates the file
// to the length last committed, which drops a crashed run's uncommitted tail.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace distill::io {

class OutputFile {
 public:
  // Opens `path` for appending after truncating it to `committed_bytes`;
  // the file is created when it does not exist and committed_bytes is 0.
  OutputFile(std::filesystem::path path, std::uint64_t committed_bytes);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void append(std::string_view bytes);
  // Writes the buffer and fsyncs; throws std::runtime_error naming the file
  // and the system's reason (e.g. "No space left on device").
  void sync();
  std::uint64_t size() const { return size_; }  // including buffered bytes
  const std::filesystem::path& path() const { return path_; }

 private:
  void drain();
  [[noreturn]] void fail(const char* what) const;

  std::filesystem::path path_;
  int fd_ = -1;
  std::string buffer_;
  std::uint64_t size_ = 0;
};

// fsyncs a folder so that files created in it survive a crash.
void sync_dir(const std::filesystem::path& dir);

}  // namespace distill::io
