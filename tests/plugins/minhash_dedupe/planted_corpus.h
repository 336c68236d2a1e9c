// Test corpora for minhash_dedupe: random responses with planted
// near-duplicates (edited copies of earlier records, so families of
// related records), the exact Jaccard of their word shingles, and the
// recall/precision of a set of keep/drop decisions against that truth.
// Used by the plugin's tests and by minhash_quality (the benchmark's scorer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distill::testing {

struct PlantedOptions {
  std::size_t records = 2000;
  std::size_t words = 170;              // words per response (about 1 KB)
  double near_duplicate_rate = 0.4;     // share of records that are edited copies of an earlier record
  std::size_t max_edits = 8;            // a copy gets 0..max_edits word substitutions, insertions or deletions
  std::uint64_t seed = 1;
};

struct PlantedRecord {
  std::string prompt;    // the same for every record of a family
  std::string response;  // lowercase words separated by single spaces (already normalised)
  std::size_t family = 0;
};

// Records of different families share no shingle (their words are drawn
// from a vocabulary of about a million), so only planted relations matter.
std::vector<PlantedRecord> planted_corpus(const PlantedOptions& options);

// The distinct word n-grams of a text, sorted.
std::vector<std::string> word_shingles(std::string_view text, std::size_t n = 5);
double jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b);

// Writes one chat `messages` line per record; returns each line's byte offset.
std::vector<std::int64_t> write_planted_jsonl(const std::filesystem::path& file,
                                              const std::vector<PlantedRecord>& records);

// What a dedupe step decided about record i.
struct Decision {
  bool dropped = false;
  std::optional<std::size_t> duplicate_of;  // index of the record it names, when dropped
  double jaccard = 0;                       // the Jaccard it reports, when dropped
};

struct Score {
  std::size_t true_duplicates = 0;  // records with J >= threshold to an earlier kept record of their family
  std::size_t found = 0;            // of those, dropped
  std::size_t dropped = 0;
  std::size_t correct_drops = 0;    // dropped, naming an earlier kept record with true J >= threshold
  double max_reported_error = 0;    // largest |reported J - true J| over the drops that name a record
  double recall() const { return true_duplicates ? static_cast<double>(found) / true_duplicates : 1.0; }
  double precision() const { return dropped ? static_cast<double>(correct_drops) / dropped : 1.0; }
};

// Scores decisions (one per record, in order) against the exact Jaccard of word n-grams.
Score score(const std::vector<PlantedRecord>& records, const std::vector<Decision>& decisions, double threshold,
            std::size_t n = 5);

}  // namespace distill::testing
