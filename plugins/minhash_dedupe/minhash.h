// MinHash and LSH banding, as pure functions with no state: shingling a
// normalised text into 32-bit shingle hashes, signatures (the minimum of
// each of `hashes` hash permutations over the shingles), band hashes, the
// exact and the estimated Jaccard similarity, the bands × rows that best
// fit a target Jaccard, an in-memory index of band buckets and a Bloom
// filter of band buckets. The minhash_dedupe stage builds on these.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

namespace distill::minhash {

enum class Unit { Word, Char };

struct Shingling {
  Unit unit = Unit::Word;
  std::size_t size = 5;    // words (or characters) per shingle
  std::uint64_t seed = 1;  // seed of every hash
};

// The distinct hashes of the text's shingles, sorted. Words are runs of
// bytes that are not ASCII white space (text::is_ascii_blank); characters
// are UTF-8 code points. A text shorter than one shingle is one shingle;
// an empty text has none.
std::vector<std::uint32_t> shingle_hashes(std::string_view text, const Shingling& shingling);

// `hashes` permutations of the 32-bit shingle hashes: a per-permutation
// salt XORed in, then the murmur3 finaliser (a bijection).
class Permutations {
 public:
  Permutations(std::size_t hashes, std::uint64_t seed);
  std::size_t size() const { return size_; }
  // Writes size() minima to `out`; no shingles give all 0xffffffff.
  void signature(std::span<const std::uint32_t> shingles, std::uint32_t* out) const;

 private:
  std::size_t size_;
  std::vector<std::uint32_t> salts_;  // padded to a multiple of the vector block
};

// The hash of band `band` (rows values starting at band * rows); never 0.
std::uint64_t band_hash(const std::uint32_t* signature, std::size_t band, std::size_t rows, std::uint64_t seed);

// |a ∩ b| / |a ∪ b| of two sorted sets of distinct values.
double jaccard(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b);
// The share of positions where two signatures agree: an unbiased estimate of the Jaccard.
double estimated_jaccard(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b);

struct Banding {
  std::size_t bands = 14;
  std::size_t rows = 8;
};

// The probability that two texts of Jaccard `s` share at least one band: 1 - (1 - s^rows)^bands.
double candidate_probability(double s, const Banding& banding);
// A pair at the threshold should become a candidate at least this often.
constexpr double kThresholdRecall = 0.9;
// The bands × rows (bands * rows <= hashes) with the smallest area under
// the candidate probability below `threshold` (fewest false candidates)
// among those that make a pair at `threshold` a candidate with probability
// >= kThresholdRecall (or, when none can, the most probable).
Banding banding_for_threshold(double threshold, std::size_t hashes);

// A blocked Bloom filter over (band, band hash) pairs of a fixed size: it
// answers "certainly absent" for most buckets that do not exist, so that
// their lookups can be skipped. No false negatives; the false-positive
// rate grows as it fills (about 1% at 9 bits per pair).
class BandFilter {
 public:
  explicit BandFilter(std::size_t bytes);
  // The bytes that hold `pairs` at about 1% false positives; a filter of
  // bytes_for(n) bytes answers 1% of the absent pairs "maybe" once it holds n.
  static std::size_t bytes_for(std::uint64_t pairs);
  std::size_t bytes() const { return blocks_.size() * sizeof(Block); }
  void add(std::size_t band, std::uint64_t hash);
  bool may_contain(std::size_t band, std::uint64_t hash) const;

 private:
  using Block = std::array<std::uint64_t, 8>;  // one 64-byte cache line
  struct Probe {
    std::size_t block;
    Block bits;
  };
  Probe probe(std::size_t band, std::uint64_t hash) const;
  std::vector<Block> blocks_;
};

// An allocator that asks the kernel for huge pages for large blocks: a
// table far larger than the CPU caches is then not also a TLB miss on
// every random lookup.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(std::size_t count) { return static_cast<T*>(allocate_bytes(count * sizeof(T))); }
  void deallocate(T* p, std::size_t) { std::free(p); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }

 private:
  static void* allocate_bytes(std::size_t bytes);
};

// The LSH buckets held in memory: a multimap from (band, band hash) to
// record numbers in an open-addressing table (linear probing, at most 3/4
// full) that doubles as it fills. Its budget counts the old and the new
// table while it grows: the last growth takes what is left (when that is
// at least a quarter more), and the table reaches at least 4/9 of the
// budget. Nothing is ever removed.
class BandIndex {
 public:
  explicit BandIndex(std::size_t max_bytes);
  // A budget that surely holds `pairs` (36 bytes a pair).
  static std::size_t bytes_for(std::uint64_t pairs);
  std::uint64_t pairs() const { return pairs_; }
  // Makes room for `pairs` more, growing the table if the budget allows; false when it does not.
  bool make_room(std::uint64_t pairs);
  // Appends the record numbers listed under (band, hash) to `out`.
  void find(std::size_t band, std::uint64_t hash, std::vector<std::uint64_t>& out) const;
  // Lists `record` under (band, hash). Needs make_room(1).
  void add(std::size_t band, std::uint64_t hash, std::uint32_t record);
  // Starts loading where (band, hash) is looked up, so that a find or add
  // of it soon after does not wait for memory.
  void prefetch(std::size_t band, std::uint64_t hash) const;

 private:
  std::size_t next_slot(std::size_t slot) const { return slot + 1 == keys_.size() ? 0 : slot + 1; }
  void place(std::uint64_t key, std::uint32_t record);
  void rehash(std::size_t slots);

  std::size_t max_slots_;
  std::uint64_t pairs_ = 0;
  std::vector<std::uint64_t, HugePageAllocator<std::uint64_t>> keys_;  // a mix of band and hash, never 0; 0: free
  std::vector<std::uint32_t, HugePageAllocator<std::uint32_t>> records_;  // the record listed in each used slot
};

}  // namespace distill::minhash
