// TokenBucket: refill rate, the one-second burst, debt from corrections,
// and the wait it reports.
#include "token_bucket.h"

#include <gtest/gtest.h>

namespace {

using distill::teacher::TokenBucket;
using Clock = TokenBucket::Clock;
using std::chrono::milliseconds;

TEST(TokenBucket, UnlimitedAlwaysGives) {
  const Clock::time_point t0{};
  TokenBucket bucket(0, t0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(bucket.try_take(1e6, t0));
  EXPECT_EQ(bucket.wait_for(1e6, t0), Clock::duration::zero());
}

TEST(TokenBucket, BurstIsOneSecondOfTheRate) {
  const Clock::time_point t0{};
  TokenBucket bucket(600, t0);  // 10 per second
  int taken = 0;
  while (bucket.try_take(1, t0)) ++taken;
  EXPECT_EQ(taken, 10);
  EXPECT_FALSE(bucket.try_take(1, t0 + milliseconds(50)));
  EXPECT_TRUE(bucket.try_take(1, t0 + milliseconds(100)));
}

TEST(TokenBucket, AchievedRateOverAMinuteIsTheLimit) {
  const Clock::time_point t0{};
  TokenBucket bucket(1200, t0);  // 20 per second
  int taken = 0;
  for (int ms = 0; ms < 60000; ++ms)
    while (bucket.try_take(1, t0 + milliseconds(ms))) ++taken;
  EXPECT_GE(taken, 1200);
  EXPECT_LE(taken, 1200 + 20);  // the limit plus one second's burst
}

TEST(TokenBucket, ReportedUsageBeyondTheEstimateIsDebt) {
  const Clock::time_point t0{};
  TokenBucket bucket(6000, t0);  // 100 tokens per second, burst 100
  EXPECT_TRUE(bucket.try_take(50, t0));
  bucket.adjust(-250, t0);  // the response used 250 more tokens than estimated
  EXPECT_FALSE(bucket.try_take(1, t0 + milliseconds(1000)));
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(bucket.wait_for(1, t0 + milliseconds(1000))).count(), 1010);
  EXPECT_TRUE(bucket.try_take(1, t0 + milliseconds(2010)));
}

TEST(TokenBucket, ARequestLargerThanTheBurstGoesWhenTheBucketIsFull) {
  const Clock::time_point t0{};
  TokenBucket bucket(60, t0);  // 1 per second, burst 1
  EXPECT_TRUE(bucket.try_take(500, t0));
  EXPECT_FALSE(bucket.try_take(1, t0 + milliseconds(1000)));
}

}  // namespace
