// Generates JSONL test corpora of teacher outputs: a deterministic mix of
// the import formats, with planted exact duplicates (verbatim and
// case/whitespace variants) and malformed lines. Used by the engine and
// integration tests and by the benchmarks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace distill::testing {

struct CorpusOptions {
  std::uint64_t records = 1000;
  std::size_t response_bytes = 200;  // approximate length of each response
  double duplicate_rate = 0.05;      // share of lines repeating an earlier answer
  double malformed_rate = 0.01;      // share of lines that are not valid JSON
  bool mixed_formats = true;         // false: chat `messages` lines only
  std::uint64_t seed = 1;
};

struct CorpusStats {
  std::uint64_t lines = 0;
  std::uint64_t malformed = 0;
  std::uint64_t duplicates = 0;  // lines planted as duplicates of an earlier line
  std::uint64_t bytes = 0;
};

CorpusStats write_corpus(const std::filesystem::path& file, const CorpusOptions& options);

}  // namespace distill::testing
