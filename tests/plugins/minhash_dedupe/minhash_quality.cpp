// minhash_quality: the benchmark's planted near-duplicate corpus and its
// scorer. `generate` writes the corpus; `score` regenerates it from the
// same options, reads a jsonl sink's output folder (kept shards and
// rejects-r*.jsonl, written with rejects: all) and prints the recall and
// precision of minhash_dedupe against the exact Jaccard of word 5-shingles.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <map>

#include "planted_corpus.h"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<std::int64_t> line_offsets(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::vector<std::int64_t> offsets;
  std::int64_t at = 0;
  for (std::string line; std::getline(in, line);) {
    offsets.push_back(at);
    at += static_cast<std::int64_t>(line.size()) + 1;
  }
  return offsets;
}

void for_each_line(const fs::path& dir, const std::string& prefix, const std::function<void(const json&)>& visit) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().starts_with(prefix)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    for (std::string line; std::getline(in, line);) visit(json::parse(line));
  }
}

int score(const distill::testing::PlantedOptions& options, const fs::path& corpus_file, const fs::path& out_dir,
          double threshold) {
  const auto records = distill::testing::planted_corpus(options);
  const auto offsets = line_offsets(corpus_file);
  if (offsets.size() != records.size())
    throw std::runtime_error(corpus_file.string() + " has " + std::to_string(offsets.size()) +
                             " lines; the options give " + std::to_string(records.size()));
  std::map<std::int64_t, std::size_t> index_at;
  for (std::size_t i = 0; i < offsets.size(); ++i) index_at[offsets[i]] = i;
  auto index_of = [&](const json& record) { return index_at.at(record.at("provenance").at("offset").get<std::int64_t>()); };

  std::vector<distill::testing::Decision> decisions(records.size());
  std::map<std::string, std::size_t> kept;
  for_each_line(out_dir, "part-", [&](const json& record) { kept.emplace(record.at("id"), index_of(record)); });
  for_each_line(out_dir, "rejects-", [&](const json& reject) {
    const json& record = reject.at("record");
    distill::testing::Decision& d = decisions[index_of(record)];
    d.dropped = true;
    const json& annotations = record.value("annotations", json::object());
    d.jaccard = annotations.value("jaccard", 0.0);
    if (auto it = kept.find(annotations.value("near_duplicate_of", "")); it != kept.end()) d.duplicate_of = it->second;
  });
  const auto s = distill::testing::score(records, decisions, threshold);
  std::cout << "records " << records.size() << ", true near-duplicates (J >= " << threshold << ") "
            << s.true_duplicates << ", dropped " << s.dropped << "\n"
            << "recall " << s.recall() << ", precision " << s.precision()
            << ", largest error of the reported Jaccard " << s.max_reported_error << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"minhash_quality: planted near-duplicate corpus and scorer for minhash_dedupe"};
  distill::testing::PlantedOptions options;
  app.add_option("--records", options.records, "records in the corpus")->capture_default_str();
  app.add_option("--words", options.words, "words per original response")->capture_default_str();
  app.add_option("--rate", options.near_duplicate_rate, "share of edited copies")->capture_default_str();
  app.add_option("--max-edits", options.max_edits, "most word edits per copy")->capture_default_str();
  app.add_option("--seed", options.seed, "random seed")->capture_default_str();
  app.require_subcommand(1);
  std::string corpus;
  CLI::App* generate = app.add_subcommand("generate", "write the corpus as chat `messages` JSONL");
  generate->add_option("corpus", corpus, "output file")->required();
  CLI::App* scorer = app.add_subcommand("score", "score a jsonl sink's output folder");
  std::string out_dir;
  double threshold = 0.8;
  scorer->add_option("corpus", corpus, "the generated corpus")->required();
  scorer->add_option("out", out_dir, "the sink's folder (rejects: all)")->required();
  scorer->add_option("--threshold", threshold, "Jaccard of a true near-duplicate")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (generate->parsed()) {
      distill::testing::write_planted_jsonl(corpus, distill::testing::planted_corpus(options));
      std::cout << corpus << ": " << options.records << " records\n";
      return 0;
    }
    return score(options, corpus, out_dir, threshold);
  } catch (const std::exception& e) {
    std::cerr << "minhash_quality: " << e.what() << "\n";
    return 1;
  }
}
