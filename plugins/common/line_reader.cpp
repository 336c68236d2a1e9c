// Chunked line reading with POSIX read(2).
#include "line_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace distill::io {
namespace {
constexpr std::size_t kChunk = 1 << 20;
}

LineReader::LineReader(const std::string& path, std::uint64_t offset, std::uint64_t max_line_bytes)
    : path_(path), max_line_bytes_(max_line_bytes), offset_(offset) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("cannot read input file " + path + ": " + std::strerror(errno));
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0)
    throw std::runtime_error("cannot seek in input file " + path + ": " + std::strerror(errno));
}

LineReader::~LineReader() {
  if (fd_ >= 0) ::close(fd_);
}

bool LineReader::fill() {
  if (eof_) return false;
  buffer_.erase(0, begin_);
  begin_ = 0;
  const std::size_t old = buffer_.size();
  buffer_.resize(old + kChunk);
  ssize_t n;
  do {
    n = ::read(fd_, buffer_.data() + old, kChunk);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw std::runtime_error("cannot read input file " + path_ + ": " + std::strerror(errno));
  buffer_.resize(old + static_cast<std::size_t>(n));
  if (n == 0) eof_ = true;
  return n > 0;
}

bool LineReader::next(Line& line) {
  line.text.clear();
  line.offset = offset_;
  line.too_long = false;
  std::uint64_t length = 0;
  for (;;) {
    const char* start = buffer_.data() + begin_;
    const std::size_t available = buffer_.size() - begin_;
    const void* newline = std::memchr(start, '\n', available);
    const std::size_t take = newline ? static_cast<std::size_t>(static_cast<const char*>(newline) - start) + 1 : available;
    if (!line.too_long && length + take > max_line_bytes_ + 1) {
      line.too_long = true;
      line.text.clear();
    }
    if (!line.too_long) line.text.append(start, take);
    length += take;
    begin_ += take;
    if (newline) break;
    if (!fill()) {
      if (length == 0) return false;
      break;
    }
  }
  offset_ += length;
  line.length = length;
  while (!line.text.empty() && (line.text.back() == '\n' || line.text.back() == '\r')) line.text.pop_back();
  return true;
}

}  // namespace distill::io
