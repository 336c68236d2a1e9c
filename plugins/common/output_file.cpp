// POSIX output files with committed lengths (see output_file.h).
#include "output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace distill::io {
namespace {
constexpr std::size_t kBufferBytes = 1 << 20;
}

OutputFile::OutputFile(std::filesystem::path path, std::uint64_t committed_bytes) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot open");
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  if (end < 0) fail("cannot seek in");
  if (static_cast<std::uint64_t>(end) < committed_bytes) {
    ::close(fd_);
    throw std::runtime_error("output file " + path_.string() + " is shorter (" + std::to_string(end) +
                             " bytes) than its committed length (" + std::to_string(committed_bytes) +
                             " bytes): it was changed outside distilld");
  }
  if (::ftruncate(fd_, static_cast<off_t>(committed_bytes)) != 0) fail("cannot truncate");
  if (::lseek(fd_, static_cast<off_t>(committed_bytes), SEEK_SET) < 0) fail("cannot seek in");
  size_ = committed_bytes;
  buffer_.reserve(kBufferBytes);
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::append(std::string_view bytes) {
  buffer_.append(bytes);
  size_ += bytes.size();
  if (buffer_.size() >= kBufferBytes) drain();
}

void OutputFile::drain() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write");
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

void OutputFile::sync() {
  drain();
  if (::fsync(fd_) != 0) fail("cannot sync");
}

void OutputFile::fail(const char* what) const {
  throw std::runtime_error(std::string(what) + " output file " + path_.string() + ": " + std::strerror(errno));
}

void sync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open folder " + dir.string() + ": " + std::strerror(errno));
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (result != 0) throw std::runtime_error("cannot sync folder " + dir.string() + ": " + std::strerror(error));
}

}  // namespace distill::io
