// Planted near-duplicate corpora and their exact scoring (see planted_corpus.h).
#include "planted_corpus.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>

namespace distill::testing {
namespace {

// Words of 2 or 3 consonant-vowel syllables: about a million distinct words.
std::string random_word(std::mt19937_64& rng) {
  static constexpr char kConsonants[] = "bcdfghjklmnprstvwxyz";
  static constexpr char kVowels[] = "aeiou";
  std::string word;
  const int syllables = 2 + static_cast<int>(rng() % 2);
  for (int i = 0; i < syllables; ++i) {
    word += kConsonants[rng() % 20];
    word += kVowels[rng() % 5];
  }
  return word;
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t end = std::min(text.find(' ', i), text.size());
    if (end > i) words.emplace_back(text.substr(i, end - i));
    i = end + 1;
  }
  return words;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) {
    if (!text.empty()) text += ' ';
    text += w;
  }
  return text;
}

}  // namespace

std::vector<PlantedRecord> planted_corpus(const PlantedOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> chance(0.0, 1.0);
  std::vector<PlantedRecord> records;
  records.reserve(options.records);
  std::size_t families = 0;
  for (std::size_t i = 0; i < options.records; ++i) {
    if (!records.empty() && chance(rng) < options.near_duplicate_rate) {
      const PlantedRecord& original = records[rng() % records.size()];
      std::vector<std::string> words = split_words(original.response);
      const std::size_t edits = rng() % (options.max_edits + 1);
      for (std::size_t e = 0; e < edits; ++e) {
        const std::size_t at = rng() % words.size();
        switch (rng() % 3) {
          case 0: words[at] = random_word(rng); break;
          case 1: words.insert(words.begin() + static_cast<std::ptrdiff_t>(at), random_word(rng)); break;
          default:
            if (words.size() > 1) words.erase(words.begin() + static_cast<std::ptrdiff_t>(at));
            break;
        }
      }
      records.push_back({original.prompt, join_words(words), original.family});
    } else {
      std::vector<std::string> words;
      for (std::size_t w = 0; w < options.words; ++w) words.push_back(random_word(rng));
      records.push_back({"Describe topic " + std::to_string(families) + ".", join_words(words), families});
      ++families;
    }
  }
  return records;
}

std::vector<std::string> word_shingles(std::string_view text, std::size_t n) {
  const std::vector<std::string> words = split_words(text);
  std::vector<std::string> shingles;
  if (words.empty()) return shingles;
  const std::size_t size = std::min(n, words.size());
  for (std::size_t i = 0; i + size <= words.size(); ++i) {
    std::string shingle = words[i];
    for (std::size_t k = 1; k < size; ++k) shingle += ' ' + words[i + k];
    shingles.push_back(std::move(shingle));
  }
  std::sort(shingles.begin(), shingles.end());
  shingles.erase(std::unique(shingles.begin(), shingles.end()), shingles.end());
  return shingles;
}

double jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> common;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
  const std::size_t united = a.size() + b.size() - common.size();
  return united ? static_cast<double>(common.size()) / static_cast<double>(united) : 1.0;
}

std::vector<std::int64_t> write_planted_jsonl(const std::filesystem::path& file,
                                              const std::vector<PlantedRecord>& records) {
  std::ofstream out(file, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + file.string());
  std::vector<std::int64_t> offsets;
  offsets.reserve(records.size());
  std::int64_t offset = 0;
  for (const PlantedRecord& r : records) {
    const nlohmann::json line = {{"messages",
                                  {{{"role", "user"}, {"content", r.prompt}},
                                   {{"role", "assistant"}, {"content", r.response}}}}};
    const std::string text = line.dump() + "\n";
    offsets.push_back(offset);
    out << text;
    offset += static_cast<std::int64_t>(text.size());
  }
  if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
  return offsets;
}

Score score(const std::vector<PlantedRecord>& records, const std::vector<Decision>& decisions, double threshold,
            std::size_t n) {
  if (decisions.size() != records.size()) throw std::invalid_argument("one decision per record is needed");
  std::map<std::size_t, std::vector<std::size_t>> kept_by_family;  // earlier kept records of each family
  Score s;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::vector<std::string> shingles = word_shingles(records[i].response, n);
    bool duplicate = false;
    for (std::size_t k : kept_by_family[records[i].family])
      if (jaccard(shingles, word_shingles(records[k].response, n)) >= threshold) {
        duplicate = true;
        break;
      }
    const Decision& d = decisions[i];
    if (duplicate) ++s.true_duplicates;
    if (duplicate && d.dropped) ++s.found;
    if (!d.dropped) {
      kept_by_family[records[i].family].push_back(i);
      continue;
    }
    ++s.dropped;
    if (!d.duplicate_of || *d.duplicate_of >= i) continue;
    const double truth = jaccard(shingles, word_shingles(records[*d.duplicate_of].response, n));
    s.max_reported_error = std::max(s.max_reported_error, std::abs(d.jaccard - truth));
    if (!decisions[*d.duplicate_of].dropped && truth >= threshold) ++s.correct_drops;
  }
  return s;
}

}  // namespace distill::testing
