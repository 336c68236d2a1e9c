// make_corpus: writes a generated JSONL corpus (see corpus.h) for benchmarks and manual runs.
#include <CLI/CLI.hpp>

#include <iostream>

#include "corpus.h"

int main(int argc, char** argv) {
  CLI::App app{"make_corpus: generate a JSONL corpus of teacher outputs"};
  distill::testing::CorpusOptions options;
  std::string out;
  app.add_option("out", out, "output file")->required();
  app.add_option("--records", options.records, "lines to write")->capture_default_str();
  app.add_option("--response-bytes", options.response_bytes, "approximate response length")->capture_default_str();
  app.add_option("--duplicate-rate", options.duplicate_rate, "share of planted duplicates")->capture_default_str();
  app.add_option("--malformed-rate", options.malformed_rate, "share of malformed lines")->capture_default_str();
  app.add_option("--seed", options.seed, "random seed")->capture_default_str();
  bool messages_only = false;
  app.add_flag("--messages-only", messages_only, "only chat `messages` lines");
  CLI11_PARSE(app, argc, argv);
  options.mixed_formats = !messages_only;
  const distill::testing::CorpusStats stats = distill::testing::write_corpus(out, options);
  std::cout << out << ": " << stats.lines << " lines, " << stats.bytes << " bytes, " << stats.duplicates
            << " planted duplicates, " << stats.malformed << " malformed\n";
  return 0;
}
