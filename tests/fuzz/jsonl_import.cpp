// Fuzz target: every JSONL import shape. The first byte picks the reader,
// the rest is the line (or file) it reads:
//   0-5  a line of the jsonl source: auto, chat_completion, batch_output,
//        messages, sharegpt, alpaca (LineParser)
//   6    a Batch API input file (BatchInputIndex), then its first line's
//        custom_id joined from a batch_output line, as the jsonl source does
//   7    a line of the prompts source (PromptDecoder)
// Every line ends in records or in a dead letter with a reason, never both.
#include <sys/mman.h>
#include <unistd.h>

#include <distill/record_json.h>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "jsonl_formats.h"
#include "prompt_decoder.h"

namespace {

using distill::fuzz::require;
namespace jsonl = distill::jsonl;

constexpr jsonl::Format kFormats[] = {jsonl::Format::Auto,     jsonl::Format::ChatCompletion, jsonl::Format::BatchOutput,
                                      jsonl::Format::Messages, jsonl::Format::ShareGpt,       jsonl::Format::Alpaca};

void check(const jsonl::LineResult& result, const std::string& line) {
  const bool blank = line.find_first_not_of(" \t\r\n") == std::string::npos;
  if (result.ok())
    require(blank == result.records.empty(), "a line that is not blank gives records or a dead letter");
  else
    require(result.records.empty(), "a dead letter gives no record");
}

void read_line(jsonl::Format format, const std::string& line) {
  jsonl::LineParser parser(format);
  check(parser.parse(line), line);
}

// A file in memory that BatchInputIndex opens by path like any other.
class MemoryFile {
 public:
  explicit MemoryFile(const std::string& content) : fd_(::memfd_create("batch_input", MFD_CLOEXEC)) {
    require(fd_ >= 0, "memfd_create works");
    require(::write(fd_, content.data(), content.size()) == static_cast<ssize_t>(content.size()), "the file is written");
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

void read_batch_input(const std::string& content) {
  const MemoryFile file(content);
  std::optional<jsonl::BatchInputIndex> index;
  try {
    index.emplace(file.path());
  } catch (const std::runtime_error&) {
    return;  // refused, naming the line: what a malformed input file gets
  }
  // The first line's custom_id must be found, and joined from an output line
  // as the jsonl source joins it.
  const std::string first_line = content.substr(0, content.find('\n'));
  simdjson::dom::parser parser;
  std::string_view custom_id;
  if (parser.parse(first_line)["custom_id"].get_string().get(custom_id)) return;
  require(index->find(custom_id).has_value(), "every indexed custom_id is found");
  std::string output = R"({"custom_id":)";
  distill::append_json_string(output, custom_id);
  output += R"(,"response":{"status_code":200,"body":{"choices":[{"message":{"content":"ok"}}]}}})";
  jsonl::LineParser joined(jsonl::Format::BatchOutput, &*index);
  const jsonl::LineResult result = joined.parse(output);
  require(result.ok() && result.records.size() == 1, "an output line joins its indexed request");
}

void read_prompt_line(const std::string& line) {
  const std::string system = "Be brief.";
  distill::prompts::PromptDecoder decoder(system);
  distill::Slot slot;
  std::vector<distill::Slot> out;
  decoder.decode(line, slot, out);
  if (slot.drop_reason.empty())
    require(out.size() == 1 && !out.front().record.prompt.empty(), "a prompt line gives one prompt");
  else
    require(out.empty(), "a dead letter gives no prompt");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const unsigned reader = data[0] % 8;
  if (reader < 6)
    read_line(kFormats[reader], rest);
  else if (reader == 6)
    read_batch_input(rest);
  else
    read_prompt_line(rest);
  return 0;
}
