// MinHash shingling, signatures, bands and Jaccard (see minhash.h). The
// signature loop is written in fixed blocks of 16 permutations so that the
// compiler vectorises it; an AVX-512 or AVX2 clone is chosen at load time
// when the CPU has it. xxHash is inlined: a shingle is a few short hashes.
#include "minhash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>

#include "text_normalize.h"

namespace distill::minhash {
namespace {

constexpr std::size_t kBlock = 16;

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The first of the 64-bit mixes of a (band, band hash) pair; `state` then
// gives more of them.
std::uint64_t pair_mix(std::size_t band, std::uint64_t hash, std::uint64_t& state) {
  state = hash ^ (static_cast<std::uint64_t>(band) << 48);
  return splitmix64(state);
}

// A BandIndex key: the pair's mix, with 0 (a free slot) moved to 1.
std::uint64_t index_key(std::size_t band, std::uint64_t hash) {
  std::uint64_t state;
  const std::uint64_t key = pair_mix(band, hash, state);
  return key == 0 ? 1 : key;
}

// A BandIndex slot: a key and a record number.
constexpr std::size_t kSlotBytes = sizeof(std::uint64_t) + sizeof(std::uint32_t);

// Where a key's probe starts in a table of `slots`: keys spread evenly, in order.
std::size_t home_slot(std::uint64_t key, std::size_t slots) {
  return static_cast<std::size_t>((static_cast<unsigned __int128>(key) * slots) >> 64);
}

std::vector<std::uint64_t> word_hashes(std::string_view text, std::uint64_t seed) {
  std::vector<std::uint64_t> words;
  words.reserve(text.size() / 5 + 1);
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text::is_ascii_blank(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !text::is_ascii_blank(text[i])) ++i;
    if (i > start) words.push_back(XXH3_64bits_withSeed(text.data() + start, i - start, seed));
  }
  return words;
}

// Minima of every permutation in `blocks` blocks of kBlock salts; writes the first `size`.
__attribute__((target_clones("avx512f", "avx2", "default"))) void minima(
    const std::uint32_t* __restrict shingles, std::size_t count, const std::uint32_t* __restrict salts, std::size_t size,
    std::uint32_t* __restrict out) {
  for (std::size_t first = 0; first < size; first += kBlock) {
    std::uint32_t m[kBlock];
    for (std::size_t j = 0; j < kBlock; ++j) m[j] = std::numeric_limits<std::uint32_t>::max();
    const std::uint32_t* s = salts + first;
    for (std::size_t k = 0; k < count; ++k) {
      const std::uint32_t x = shingles[k];
      for (std::size_t j = 0; j < kBlock; ++j) {
        std::uint32_t v = x ^ s[j];
        v ^= v >> 16;
        v *= 0x85ebca6bu;
        v ^= v >> 13;
        v *= 0xc2b2ae35u;
        v ^= v >> 16;
        m[j] = v < m[j] ? v : m[j];
      }
    }
    const std::size_t n = std::min(kBlock, size - first);
    for (std::size_t j = 0; j < n; ++j) out[first + j] = m[j];
  }
}

}  // namespace

std::vector<std::uint32_t> shingle_hashes(std::string_view text, const Shingling& shingling) {
  std::vector<std::uint32_t> out;
  if (shingling.unit == Unit::Word) {
    const std::vector<std::uint64_t> words = word_hashes(text, shingling.seed);
    if (words.empty()) return out;
    const std::size_t n = std::min(shingling.size, words.size());
    out.reserve(words.size() - n + 1);
    for (std::size_t k = 0; k + n <= words.size(); ++k)
      out.push_back(static_cast<std::uint32_t>(
          XXH3_64bits_withSeed(&words[k], n * sizeof(std::uint64_t), shingling.seed)));
  } else {
    std::vector<std::size_t> starts;  // where each code point starts (stray continuation bytes join the one before)
    starts.reserve(text.size() + 1);
    for (std::size_t i = 0; i < text.size(); ++i)
      if (i == 0 || (static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) starts.push_back(i);
    if (starts.empty()) return out;
    const std::size_t n = std::min(shingling.size, starts.size());
    const std::size_t count = starts.size() - n + 1;
    starts.push_back(text.size());
    out.reserve(count);
    for (std::size_t k = 0; k < count; ++k)
      out.push_back(static_cast<std::uint32_t>(
          XXH3_64bits_withSeed(text.data() + starts[k], starts[k + n] - starts[k], shingling.seed)));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Permutations::Permutations(std::size_t hashes, std::uint64_t seed) : size_(hashes) {
  salts_.resize((hashes + kBlock - 1) / kBlock * kBlock);
  std::uint64_t state = seed;
  for (std::uint32_t& salt : salts_) salt = static_cast<std::uint32_t>(splitmix64(state));
}

void Permutations::signature(std::span<const std::uint32_t> shingles, std::uint32_t* out) const {
  minima(shingles.data(), shingles.size(), salts_.data(), size_, out);
}

std::uint64_t band_hash(const std::uint32_t* signature, std::size_t band, std::size_t rows, std::uint64_t seed) {
  const std::uint64_t hash = XXH3_64bits_withSeed(signature + band * rows, rows * sizeof(std::uint32_t), seed);
  return hash != 0 ? hash : 1;
}

double jaccard(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b) {
  if (a.empty() && b.empty()) return 1.0;
  std::size_t common = 0;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++common;
      ++i;
      ++j;
    }
  }
  return static_cast<double>(common) / static_cast<double>(a.size() + b.size() - common);
}

double estimated_jaccard(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b) {
  const std::size_t n = std::min(a.size(), b.size());
  if (n == 0) return 0.0;
  std::size_t equal = 0;
  for (std::size_t i = 0; i < n; ++i) equal += a[i] == b[i];
  return static_cast<double>(equal) / static_cast<double>(n);
}

double candidate_probability(double s, const Banding& banding) {
  return 1.0 - std::pow(1.0 - std::pow(s, static_cast<double>(banding.rows)), static_cast<double>(banding.bands));
}

Banding banding_for_threshold(double threshold, std::size_t hashes) {
  constexpr int kSteps = 200;  // midpoint rule
  auto false_positive_area = [&](const Banding& banding) {
    const double step = threshold / kSteps;
    double sum = 0;
    for (int i = 0; i < kSteps; ++i) sum += candidate_probability((i + 0.5) * step, banding);
    return sum * step;
  };
  Banding best{1, 1};
  double best_recall = -1;
  double best_area = std::numeric_limits<double>::infinity();
  for (std::size_t bands = 1; bands <= hashes; ++bands)
    for (std::size_t rows = 1; bands * rows <= hashes; ++rows) {
      const Banding candidate{bands, rows};
      const double recall = std::min(candidate_probability(threshold, candidate), kThresholdRecall);
      if (recall < best_recall) continue;
      const double area = false_positive_area(candidate);
      if (recall > best_recall || area < best_area) {
        best = candidate;
        best_recall = recall;
        best_area = area;
      }
    }
  return best;
}

BandFilter::BandFilter(std::size_t bytes) : blocks_(std::max<std::size_t>(1, bytes / sizeof(Block))) {}

// After p pairs in a block, a bit is set with probability 1 - e^(-6p/512)
// and a false positive needs six: 1% at 6p/512 = 0.624, p = 53 pairs a block.
std::size_t BandFilter::bytes_for(std::uint64_t pairs) {
  constexpr std::uint64_t kPairsPerBlock = 53;
  return static_cast<std::size_t>((pairs + kPairsPerBlock - 1) / kPairsPerBlock) * sizeof(Block);
}

// Six bits in one block, from a 64-bit mix of the band and its hash.
BandFilter::Probe BandFilter::probe(std::size_t band, std::uint64_t hash) const {
  std::uint64_t state;
  const std::uint64_t h = pair_mix(band, hash, state);
  Probe p{static_cast<std::size_t>((h >> 32) * blocks_.size() >> 32), {}};
  std::uint64_t bits = splitmix64(state);
  for (int i = 0; i < 6; ++i, bits >>= 9) p.bits[(bits >> 6) & 7] |= std::uint64_t{1} << (bits & 63);
  return p;
}

void BandFilter::add(std::size_t band, std::uint64_t hash) {
  const Probe p = probe(band, hash);
  for (std::size_t i = 0; i < p.bits.size(); ++i) blocks_[p.block][i] |= p.bits[i];
}

bool BandFilter::may_contain(std::size_t band, std::uint64_t hash) const {
  const Probe p = probe(band, hash);
  for (std::size_t i = 0; i < p.bits.size(); ++i)
    if ((blocks_[p.block][i] & p.bits[i]) != p.bits[i]) return false;
  return true;
}

template <typename T>
void* HugePageAllocator<T>::allocate_bytes(std::size_t bytes) {
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  if (bytes < kHugePage) {
    if (void* p = std::malloc(bytes > 0 ? bytes : 1)) return p;
    throw std::bad_alloc();
  }
  const std::size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, size);
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, size, MADV_HUGEPAGE);  // advice only: without huge pages the table works as well, more slowly
  return p;
}

template struct HugePageAllocator<std::uint64_t>;
template struct HugePageAllocator<std::uint32_t>;

BandIndex::BandIndex(std::size_t max_bytes)
    : max_slots_(std::max<std::size_t>(4, max_bytes / kSlotBytes)),
      keys_(std::min<std::size_t>(std::size_t{1} << 16, max_slots_ / 2)),
      records_(keys_.size()) {}

// The table reaches at least 4/9 of the budget's slots, and holds 3/4 of them.
std::size_t BandIndex::bytes_for(std::uint64_t pairs) {
  const std::size_t slots = static_cast<std::size_t>((pairs * 4 + 2) / 3);
  return (slots * 9 + 3) / 4 * kSlotBytes;
}

bool BandIndex::make_room(std::uint64_t pairs) {
  while (pairs_ + pairs > keys_.size() * 3 / 4) {
    const std::size_t grown = std::min(2 * keys_.size(), max_slots_ - keys_.size());
    if (grown < keys_.size() + keys_.size() / 4) return false;
    rehash(grown);
  }
  return true;
}

void BandIndex::rehash(std::size_t slots) {
  decltype(keys_) keys(slots);
  decltype(records_) records(slots);
  keys.swap(keys_);
  records.swap(records_);
  for (std::size_t slot = 0; slot < keys.size(); ++slot)
    if (keys[slot] != 0) place(keys[slot], records[slot]);
}

void BandIndex::find(std::size_t band, std::uint64_t hash, std::vector<std::uint64_t>& out) const {
  const std::uint64_t key = index_key(band, hash);
  for (std::size_t slot = home_slot(key, keys_.size()); keys_[slot] != 0; slot = next_slot(slot))
    if (keys_[slot] == key) out.push_back(records_[slot]);
}

void BandIndex::add(std::size_t band, std::uint64_t hash, std::uint32_t record) {
  place(index_key(band, hash), record);
  ++pairs_;
}

void BandIndex::prefetch(std::size_t band, std::uint64_t hash) const {
  __builtin_prefetch(&keys_[home_slot(index_key(band, hash), keys_.size())]);
}

void BandIndex::place(std::uint64_t key, std::uint32_t record) {
  std::size_t slot = home_slot(key, keys_.size());
  while (keys_[slot] != 0) slot = next_slot(slot);
  keys_[slot] = key;
  records_[slot] = record;
}

}  // namespace distill::minhash
