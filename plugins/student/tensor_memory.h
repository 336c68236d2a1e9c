// Reuse of libtorch's CPU tensor memory while a training runs. A training
// step frees and allocates the same few hundred large tensors every step;
// glibc gives large freed blocks back to the kernel (munmap, trimmed or
// deleted arena heaps), so each step faulted in about 150 MB of fresh zero
// pages again: a fifth of the CPU time at 5 M parameters went to the kernel.
// While a TrainingMemory exists, freed blocks of 64 KiB and more are kept,
// by size class, for the next allocation of that class.
#pragma once

#include <cstddef>

namespace distill::student {

// Scoped: the first one installs the caching allocator as libtorch's CPU
// allocator (for the life of the process: it allocates like the default one
// when no training runs), and the last one to end frees what is cached.
// Trainings running at once in one process share the cache.
class TrainingMemory {
 public:
  TrainingMemory();
  ~TrainingMemory();
  TrainingMemory(const TrainingMemory&) = delete;
  TrainingMemory& operator=(const TrainingMemory&) = delete;
};

// The capacity a request of `bytes` is served with: rounded up to one of
// eight steps per power of two from 64 KiB on (at most 12.5% more), so
// batches padded to slightly different lengths reuse each other's blocks.
std::size_t tensor_capacity(std::size_t bytes);

// Bytes held in the cache now (for tests).
std::size_t cached_tensor_bytes();

}  // namespace distill::student
