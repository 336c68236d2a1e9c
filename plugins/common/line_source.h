// LineSource: the part every line-oriented source shares. It reads a file
// or a sorted glob of files line by line (serially), hands the lines to a
// LineDecoder in the parallel part, and keeps the resumable position
// (file number, path, byte offset, line number). Lines longer than
// max_line_bytes become dead letters without being held in memory.
#pragma once

#include <distill/plugin.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "line_reader.h"

namespace distill::io {

// Turns one line into records. One decoder serves one thread at a time.
class LineDecoder {
 public:
  virtual ~LineDecoder() = default;
  // `slot` holds the line's provenance (source, uri, offset, terms). Append
  // the records to `out` (copying that provenance), or set
  // slot.drop_reason (and annotations) and append `slot` as a dead letter.
  virtual void decode(const std::string& line, Slot& slot, std::vector<Slot>& out) = 0;
};

class LineSource : public Source {
 public:
  // Reads the parameters "path", "terms" and "max_line_bytes" (see line_source_params()).
  LineSource(Context& ctx, std::string source_name);

  bool next(Batch& batch, std::size_t max) final;
  unsigned decode_parallelism() const final { return 64; }
  void decode(Batch& batch) final;
  std::string position() const final;
  void seek(std::string_view position) final;
  SourceProgress progress() const final;

  // The files `pattern` names (itself, or a glob's matches, sorted); throws
  // ParamError("path", ...) when there are none.
  static std::vector<std::string> expand(const std::string& pattern);

 protected:
  virtual std::unique_ptr<LineDecoder> make_decoder() = 0;

 private:
  std::unique_ptr<LineDecoder> acquire_decoder();
  void release_decoder(std::unique_ptr<LineDecoder> decoder);

  std::string source_name_;
  std::vector<std::string> files_;
  std::vector<std::uint64_t> sizes_;
  std::uint64_t total_bytes_ = 0;
  std::uint64_t done_bytes_ = 0;
  std::string terms_;
  std::uint64_t max_line_bytes_;
  std::size_t file_index_ = 0;
  std::uint64_t offset_ = 0;
  std::int64_t line_number_ = 0;
  std::unique_ptr<LineReader> reader_;
  std::mutex decoders_mutex_;
  std::vector<std::unique_ptr<LineDecoder>> decoders_;
};

// The parameters LineSource reads, for a source's declaration.
std::vector<ParamSpec> line_source_params(const std::string& what);

}  // namespace distill::io
