// Reads a file line by line from a byte offset, with a cap on line length:
// a longer line is reported (its length and offset) but never held in memory.
#pragma once

#include <cstdint>
#include <string>

namespace distill::io {

class LineReader {
 public:
  LineReader(const std::string& path, std::uint64_t offset, std::uint64_t max_line_bytes);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  struct Line {
    std::string text;           // without the line ending; empty when too long
    std::uint64_t offset = 0;   // of the line's first byte
    std::uint64_t length = 0;   // bytes including the line ending
    bool too_long = false;
  };
  // False at the end of the file. Throws std::runtime_error on a read error.
  bool next(Line& line);
  std::uint64_t offset() const { return offset_; }  // of the next line

 private:
  bool fill();

  std::string path_;
  int fd_ = -1;
  std::uint64_t max_line_bytes_;
  std::uint64_t offset_;
  std::string buffer_;
  std::size_t begin_ = 0;  // unread part of buffer_ is [begin_, buffer_.size())
  bool eof_ = false;
};

}  // namespace distill::io
