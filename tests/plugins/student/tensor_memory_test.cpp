// The caching CPU allocator a training installs in libtorch
// (plugins/student/tensor_memory.h), driven through c10's CPU allocator as
// libtorch's tensors use it: size classes, reuse while a training runs, no
// caching otherwise, the cache's bound, and its release at the end.
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>

#include "tensor_memory.h"

namespace {

using namespace distill::student;

c10::DataPtr allocate(std::size_t bytes) {
  TrainingMemory installed;  // makes sure the caching allocator is libtorch's before asking for it
  return c10::GetCPUAllocator()->allocate(bytes);
}

TEST(TensorMemory, SmallRequestsKeepTheirSizeAndLargeOnesRoundUpByAtMostAnEighth) {
  EXPECT_EQ(tensor_capacity(1), 1u);
  EXPECT_EQ(tensor_capacity(65535), 65535u);
  EXPECT_EQ(tensor_capacity(65536), 65536u);
  EXPECT_EQ(tensor_capacity(65537), 65536u + 8192u);
  EXPECT_EQ(tensor_capacity(4u << 20), 4u << 20);
  EXPECT_EQ(tensor_capacity((4u << 20) + 1), (4u << 20) + (512u << 10));
  for (std::size_t bytes = 65536; bytes < (64u << 20); bytes = bytes * 9 / 8 + 7) {
    const std::size_t capacity = tensor_capacity(bytes);
    ASSERT_GE(capacity, bytes);
    ASSERT_LE(capacity - bytes, bytes / 8) << bytes;
    ASSERT_EQ(tensor_capacity(capacity), capacity) << bytes;
  }
}

TEST(TensorMemory, BlocksAreAlignedAndWritableToTheirFullSize) {
  for (std::size_t bytes : {1u, 100u, 70000u, 3u << 20}) {
    c10::DataPtr block = allocate(bytes);
    ASSERT_NE(block.get(), nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block.get()) % 64, 0u);
    std::memset(block.get(), 0x5a, bytes);
  }
  EXPECT_EQ(allocate(0).get(), nullptr);
}

TEST(TensorMemory, AFreedBlockServesTheNextRequestOfItsClassWhileATrainingRuns) {
  TrainingMemory training;
  std::optional<c10::DataPtr> first(allocate(1u << 20));
  void* const address = first->get();
  first.reset();
  EXPECT_EQ(cached_tensor_bytes(), 1u << 20);
  c10::DataPtr again = allocate((1u << 20) - 1000);  // another length in the same class
  EXPECT_EQ(again.get(), address);
  EXPECT_EQ(cached_tensor_bytes(), 0u);
  c10::DataPtr other = allocate(2u << 20);
  EXPECT_NE(other.get(), address);
}

TEST(TensorMemory, NothingIsCachedOutsideATrainingAndTheLastTrainingToEndFreesTheCache) {
  allocate(1u << 20);
  EXPECT_EQ(cached_tensor_bytes(), 0u);
  std::optional<TrainingMemory> first(std::in_place), second(std::in_place);
  allocate(1u << 20);
  EXPECT_EQ(cached_tensor_bytes(), 1u << 20);
  first.reset();
  EXPECT_EQ(cached_tensor_bytes(), 1u << 20);
  second.reset();
  EXPECT_EQ(cached_tensor_bytes(), 0u);
}

TEST(TensorMemory, TheCacheHoldsNoMoreThanTheMostMemoryEverInUseAtOnce) {
  TrainingMemory training;
  const std::size_t block = 8u << 20;
  {
    std::vector<c10::DataPtr> live;
    for (int i = 0; i < 4; ++i) live.push_back(allocate(block));
  }
  EXPECT_EQ(cached_tensor_bytes(), 4 * block);
  // 400 MB in use alone is the new peak; caching it beside the 32 MB would
  // hold more than that, so it goes back to the system (never touched, so
  // never resident).
  allocate(400u << 20);
  EXPECT_EQ(cached_tensor_bytes(), 4 * block);
  // Now the peak is 400 MB: the next blocks of 8 MB that are freed are kept.
  {
    std::vector<c10::DataPtr> live;
    for (int i = 0; i < 8; ++i) live.push_back(allocate(block));
  }
  EXPECT_EQ(cached_tensor_bytes(), 8 * block);
}

}  // namespace
