// Unit tests of the MinHash functions behind minhash_dedupe: shingling,
// exact and estimated Jaccard, signatures, the LSH S-curve, the bands x
// rows derived from a threshold, the in-memory bucket index and the bucket
// Bloom filter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "minhash.h"

namespace {

using namespace distill::minhash;

TEST(Shingles, WordShinglesOfShortLongAndEmptyTexts) {
  const Shingling five{Unit::Word, 5, 1};
  EXPECT_TRUE(shingle_hashes("", five).empty());
  EXPECT_TRUE(shingle_hashes(" \t\n", five).empty());
  EXPECT_EQ(shingle_hashes("only three words", five).size(), 1u);
  EXPECT_EQ(shingle_hashes("one two three four five six seven eight nine ten", five).size(), 6u);
  EXPECT_EQ(shingle_hashes("a a a a a a a a a a", five).size(), 1u);  // repeated shingles count once
  EXPECT_EQ(shingle_hashes("one  two\tthree\nfour five six", five), shingle_hashes("one two three four five six", five));
  EXPECT_NE(shingle_hashes("one two three four five six", five), shingle_hashes("one two three four five sex", five));
}

TEST(Shingles, CharacterShinglesCountCodePoints) {
  const Shingling two{Unit::Char, 2, 1};
  EXPECT_EQ(shingle_hashes("h\xc3\xa9llo", two).size(), 4u);  // hé él ll lo
  EXPECT_EQ(shingle_hashes("\xc3\xa9", two).size(), 1u);
  EXPECT_EQ(shingle_hashes("\x80\x80x", two).size(), 1u);  // stray continuation bytes join the code point before
}

TEST(Shingles, SeedChangesEveryHash) {
  const auto a = shingle_hashes("one two three four five six", {Unit::Word, 5, 1});
  const auto b = shingle_hashes("one two three four five six", {Unit::Word, 5, 2});
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_NE(a[0], b[0]);
}

TEST(Jaccard, ExactOnSortedSets) {
  const std::vector<std::uint32_t> a = {1, 2, 3, 4};
  const std::vector<std::uint32_t> b = {3, 4, 5, 6, 7, 8};
  EXPECT_DOUBLE_EQ(jaccard(a, b), 2.0 / 8.0);
  EXPECT_DOUBLE_EQ(jaccard(a, a), 1.0);
  EXPECT_DOUBLE_EQ(jaccard(a, {}), 0.0);
}

TEST(Signature, AllMaximaWithoutShinglesAndIndependentOfOrder) {
  const Permutations p(13, 7);  // not a multiple of the vector block
  std::vector<std::uint32_t> sig(13, 0);
  p.signature({}, sig.data());
  for (std::uint32_t v : sig) EXPECT_EQ(v, 0xffffffffu);
  const std::vector<std::uint32_t> forward = {5, 9, 1000, 77, 123456789};
  const std::vector<std::uint32_t> backward(forward.rbegin(), forward.rend());
  std::vector<std::uint32_t> x(13), y(13);
  p.signature(forward, x.data());
  p.signature(backward, y.data());
  EXPECT_EQ(x, y);
  EXPECT_NE(x[0], x[1]);
}

// Sets of 166 values with a known Jaccard: the estimate from 112 hashes is
// unbiased and its spread is the binomial one, sqrt(J(1-J)/112), which
// holds only when the permutations behave independently.
TEST(Signature, EstimateIsUnbiasedWithBinomialSpread) {
  const Permutations p(112, 3);
  std::mt19937_64 rng(99);
  for (double target : {0.5, 0.8, 0.9}) {
    const int n = 166;
    const int shared = static_cast<int>(std::lround(2 * n * target / (1 + target)));
    const double truth = static_cast<double>(shared) / (2 * n - shared);
    double sum = 0, squares = 0;
    const int pairs = 600;
    for (int t = 0; t < pairs; ++t) {
      std::vector<std::uint32_t> a, b;
      for (int i = 0; i < shared; ++i) {
        const auto v = static_cast<std::uint32_t>(rng());
        a.push_back(v);
        b.push_back(v);
      }
      for (int i = shared; i < n; ++i) {
        a.push_back(static_cast<std::uint32_t>(rng()));
        b.push_back(static_cast<std::uint32_t>(rng()));
      }
      std::vector<std::uint32_t> sa(112), sb(112);
      p.signature(a, sa.data());
      p.signature(b, sb.data());
      const double error = estimated_jaccard(sa, sb) - truth;
      sum += error;
      squares += error * error;
    }
    const double bias = sum / pairs;
    const double spread = std::sqrt(squares / pairs - bias * bias);
    const double expected = std::sqrt(truth * (1 - truth) / 112);
    EXPECT_LT(std::abs(bias), 0.006) << "J = " << truth;
    EXPECT_GT(spread, 0.8 * expected) << "J = " << truth;
    EXPECT_LT(spread, 1.2 * expected) << "J = " << truth;
  }
}

TEST(Banding, DefaultSCurve) {
  const Banding d{14, 8};
  EXPECT_NEAR(candidate_probability(0.8, d), 0.9238, 1e-3);
  EXPECT_NEAR(candidate_probability(0.9, d), 0.99964, 1e-4);
  EXPECT_NEAR(candidate_probability(0.5, d), 0.0533, 1e-3);
  EXPECT_DOUBLE_EQ(candidate_probability(1.0, d), 1.0);
}

TEST(Banding, DerivedFromAThresholdFavoursRecallAtIt) {
  for (double t : {0.3, 0.5, 0.7, 0.8, 0.9, 0.95}) {
    const Banding b = banding_for_threshold(t, 112);
    EXPECT_LE(b.bands * b.rows, 112u) << t;
    EXPECT_GE(candidate_probability(t, b), kThresholdRecall) << t << ": " << b.bands << " x " << b.rows;
    EXPECT_LT(candidate_probability(t - 0.2, b), 0.4) << t << ": " << b.bands << " x " << b.rows;
  }
  const Banding at_08 = banding_for_threshold(0.8, 112);  // next to the default 14 x 8
  EXPECT_EQ(at_08.bands, 13u);
  EXPECT_EQ(at_08.rows, 8u);
  const Banding few = banding_for_threshold(0.8, 4);
  EXPECT_LE(few.bands * few.rows, 4u);
  EXPECT_GE(candidate_probability(0.8, few), kThresholdRecall);
}

TEST(BandFilter, NoFalseNegativesAndFewFalsePositives) {
  BandFilter filter(1 << 20);  // 8.4 million bits for 700,000 pairs: 12 bits each
  std::mt19937_64 rng(5);
  std::vector<std::uint64_t> added;
  for (int i = 0; i < 50000; ++i) {
    added.push_back(rng());
    for (std::size_t band = 0; band < 14; ++band) filter.add(band, added.back());
  }
  for (std::uint64_t hash : added)
    for (std::size_t band = 0; band < 14; ++band) ASSERT_TRUE(filter.may_contain(band, hash));
  int false_positives = 0;
  for (int i = 0; i < 100000; ++i) false_positives += filter.may_contain(static_cast<std::size_t>(i % 14), rng());
  EXPECT_LT(false_positives, 1500);  // < 1.5%
}

TEST(BandFilter, BytesForHoldsThatManyPairsAtAboutOnePercent) {
  constexpr std::uint64_t kPairs = 700000;
  EXPECT_EQ(BandFilter::bytes_for(0), 0u);
  EXPECT_EQ(BandFilter::bytes_for(53), 64u);
  EXPECT_EQ(BandFilter::bytes_for(54), 128u);
  BandFilter filter(BandFilter::bytes_for(kPairs));
  EXPECT_EQ(filter.bytes(), BandFilter::bytes_for(kPairs));
  std::mt19937_64 rng(7);
  for (std::uint64_t i = 0; i < kPairs; ++i) filter.add(static_cast<std::size_t>(i % 14), rng());
  int false_positives = 0;
  for (int i = 0; i < 200000; ++i) false_positives += filter.may_contain(static_cast<std::size_t>(i % 14), rng());
  EXPECT_GT(false_positives, 1000);  // > 0.5%: full, as bytes_for says
  EXPECT_LT(false_positives, 3000);  // < 1.5%
}

// Enough pairs to make the table double several times from its first 65,536 slots.
TEST(BandIndex, GrowsAndFindsTheRecordsListedUnderAPairAndNoOthers) {
  BandIndex index(64 << 20);
  std::mt19937_64 rng(11);
  std::vector<std::uint64_t> hashes;
  for (std::uint32_t record = 0; record < 40000; ++record) {
    hashes.push_back(rng());
    for (std::size_t band = 0; band < 14; ++band) {
      ASSERT_TRUE(index.make_room(1));
      index.add(band, hashes.back(), record);
    }
  }
  ASSERT_TRUE(index.make_room(2));
  index.add(3, hashes[10], 40000);  // more records in one bucket
  index.add(3, hashes[10], 40001);
  EXPECT_EQ(index.pairs(), 40000u * 14 + 2);
  std::vector<std::uint64_t> found;
  for (std::uint32_t record = 0; record < 40000; ++record)
    for (std::size_t band = 0; band < 14; ++band) {
      found.clear();
      index.find(band, hashes[record], found);
      std::sort(found.begin(), found.end());
      const std::vector<std::uint64_t> expected =
          band == 3 && record == 10 ? std::vector<std::uint64_t>{10, 40000, 40001} : std::vector<std::uint64_t>{record};
      ASSERT_EQ(found, expected) << "record " << record << " band " << band;
    }
  found.clear();
  index.find(14, hashes[0], found);  // the same hash in another band is another bucket
  for (int i = 0; i < 10000; ++i) index.find(static_cast<std::size_t>(i % 14), rng(), found);
  EXPECT_TRUE(found.empty());
}

TEST(BandIndex, TheBudgetOfBytesForHoldsThatManyPairs) {
  EXPECT_EQ(BandIndex::bytes_for(3), 9u * 12);  // 4 slots, 9/4 of them
  for (std::uint64_t pairs : {1u, 2u, 3u, 4u, 5u, 1000u, 49153u, 70001u, 2000000u, 2500000u}) {
    BandIndex index(BandIndex::bytes_for(pairs));
    for (std::uint64_t i = 0; i < pairs; ++i) {
      ASSERT_TRUE(index.make_room(1)) << pairs << " pairs, at " << i;
      index.add(i % 14, i * 0x9e3779b97f4a7c15ull, static_cast<std::uint32_t>(i));
    }
    EXPECT_EQ(index.pairs(), pairs);
    EXPECT_TRUE(index.make_room(0));
  }
}

TEST(BandIndex, SaysNoOnceItsBudgetIsFull) {
  BandIndex index(1 << 20);  // 87,381 slots of 12 bytes; the old table counts while it grows
  std::uint64_t added = 0;
  while (index.make_room(14)) {
    for (std::size_t band = 0; band < 14; ++band) index.add(band, added * 14 + band, static_cast<std::uint32_t>(added));
    ++added;
  }
  EXPECT_EQ(index.pairs(), added * 14);
  EXPECT_GE(index.pairs() + 14, (1u << 20) / 12 * 4 / 9 * 3 / 4);  // at least 4/9 of the budget, 3/4 full
  EXPECT_LE(index.pairs(), (1u << 20) / 12 * 3 / 4);
  EXPECT_FALSE(index.make_room(14));
}

}  // namespace
