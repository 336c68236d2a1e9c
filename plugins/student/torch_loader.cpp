// Loads libstudent_torch.so, the plugin's libtorch half, from the folder
// the plugin itself was loaded from (see student.h for why it is apart).
#include <dlfcn.h>
#include <stdlib.h>

#include <mutex>
#include <stdexcept>
#include <string>

#include "student.h"

namespace distill::student {

const TorchBackend& torch_backend() {
  static std::once_flag once;
  static const TorchBackend* backend = nullptr;
  static std::string error;
  std::call_once(once, [] {
    Dl_info self{};
    if (!dladdr(reinterpret_cast<void*>(&torch_backend), &self) || !self.dli_fname) {
      error = "cannot tell which file the student plugin was loaded from";
      return;
    }
    const std::filesystem::path file = std::filesystem::path(self.dli_fname).parent_path() / "libstudent_torch.so";
    // libgomp reads this once, when libtorch loads it. Its default spins
    // waiting threads for a while after each parallel region; on a busy
    // machine (the engine's threads, another pipeline) that made training
    // with 2 threads 10-20 times slower than with 1. A user's setting wins.
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      error = "cannot load the student's libtorch library " + file.string() + ": " + dlerror();
      return;
    }
    using Entry = const TorchBackend* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, DISTILL_STUDENT_TORCH_ENTRY));
    if (!entry) {
      error = file.string() + " has no " DISTILL_STUDENT_TORCH_ENTRY " symbol";
      return;
    }
    backend = entry();  // the library stays loaded for the life of the process
  });
  if (!backend) throw std::runtime_error(error);
  return *backend;
}

}  // namespace distill::student
