// The caching CPU allocator behind TrainingMemory (tensor_memory.h): blocks
// carry their capacity in a header just before the data, free blocks wait in
// per-capacity lists, and the cache never holds more than the most bytes
// that were in use at once, so it at most doubles a training's peak. Under
// AddressSanitizer a cached block is poisoned, so a use after free is still
// reported.
#include "tensor_memory.h"

#include <c10/core/CPUAllocator.h>
#include <sanitizer/asan_interface.h>

#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace distill::student {
namespace {

constexpr std::size_t kAlignment = 64;            // as libtorch aligns CPU tensors
constexpr std::size_t kSmallest = 64 * 1024;      // smaller blocks stay with malloc's bins

struct Header {
  std::size_t capacity;
};
static_assert(sizeof(Header) <= kAlignment);

Header* header_of(void* data) { return reinterpret_cast<Header*>(static_cast<char*>(data) - kAlignment); }

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t bytes) const override {
    if (bytes == 0) return {nullptr, nullptr, &release, c10::Device(c10::DeviceType::CPU)};
    const std::size_t capacity = tensor_capacity(bytes);
    void* data = capacity >= kSmallest ? take(capacity) : nullptr;
    if (!data) {
      void* base = std::aligned_alloc(kAlignment, kAlignment + (capacity + kAlignment - 1) / kAlignment * kAlignment);
      if (!base) throw std::bad_alloc();
      data = static_cast<char*>(base) + kAlignment;
      header_of(data)->capacity = capacity;
    }
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static CachingCpuAllocator& instance() {
    static CachingCpuAllocator* const allocator = [] {
      auto* made = new CachingCpuAllocator;  // never destroyed: tensors may outlive static destruction
      c10::SetCPUAllocator(made);
      return made;
    }();
    return *allocator;
  }

  void begin_training() {
    std::lock_guard lock(mutex_);
    ++trainings_;
  }

  void end_training() {
    std::vector<void*> blocks;
    {
      std::lock_guard lock(mutex_);
      if (--trainings_ > 0) return;
      for (auto& [capacity, list] : free_) blocks.insert(blocks.end(), list.begin(), list.end());
      free_.clear();
      cached_bytes_ = 0;
    }
    for (void* data : blocks) {
      ASAN_UNPOISON_MEMORY_REGION(data, header_of(data)->capacity);
      std::free(header_of(data));
    }
  }

  std::size_t cached_bytes() const {
    std::lock_guard lock(mutex_);
    return cached_bytes_;
  }

 private:
  // Counts a block of `capacity` as in use and returns a cached one of that
  // class, or null when the caller must allocate it.
  void* take(std::size_t capacity) const {
    std::lock_guard lock(mutex_);
    in_use_ += capacity;
    peak_in_use_ = std::max(peak_in_use_, in_use_);
    auto found = free_.find(capacity);
    if (found == free_.end() || found->second.empty()) return nullptr;
    void* data = found->second.back();
    found->second.pop_back();
    ASAN_UNPOISON_MEMORY_REGION(data, capacity);
    cached_bytes_ -= capacity;
    return data;
  }

  static void release(void* data) {
    if (!data) return;
    const std::size_t capacity = header_of(data)->capacity;
    if (capacity >= kSmallest) {
      CachingCpuAllocator& self = instance();
      std::lock_guard lock(self.mutex_);
      self.in_use_ -= capacity;
      if (self.trainings_ > 0 && self.cached_bytes_ + capacity <= self.peak_in_use_) {
        ASAN_POISON_MEMORY_REGION(data, capacity);
        self.free_[capacity].push_back(data);
        self.cached_bytes_ += capacity;
        return;
      }
    }
    std::free(header_of(data));
  }

  mutable std::mutex mutex_;
  mutable std::unordered_map<std::size_t, std::vector<void*>> free_;
  mutable std::size_t cached_bytes_ = 0, in_use_ = 0, peak_in_use_ = 0;
  int trainings_ = 0;
};

}  // namespace

std::size_t tensor_capacity(std::size_t bytes) {
  if (bytes < kSmallest) return bytes;
  const std::size_t step = std::size_t{1} << (std::bit_width(bytes) - 4);
  return (bytes + step - 1) & ~(step - 1);
}

std::size_t cached_tensor_bytes() { return CachingCpuAllocator::instance().cached_bytes(); }

TrainingMemory::TrainingMemory() { CachingCpuAllocator::instance().begin_training(); }

TrainingMemory::~TrainingMemory() { CachingCpuAllocator::instance().end_training(); }

}  // namespace distill::student
