// A tmpfs mounted by a test on a folder of its own: a small real
// filesystem that fills up (tests and CI run as root). Unmounted when the
// object goes, so declare it after the TempDir that holds the folder.
#pragma once

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace distill::testing {

class Tmpfs {
 public:
  // Mounts a tmpfs of `size` (e.g. "1m") on `dir`, creating the folder;
  // nullptr with the reason in `why` when mounting is not permitted here.
  static std::unique_ptr<Tmpfs> mount(const std::filesystem::path& dir, const std::string& size, std::string& why) {
    std::filesystem::create_directories(dir);
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) {
      why = "cannot mount a tmpfs on " + dir.string() + " (" + std::strerror(errno) +
            "): this test needs root, as in CI";
      return nullptr;
    }
    return std::unique_ptr<Tmpfs>(new Tmpfs(dir));
  }
  ~Tmpfs() { ::umount2(dir_.c_str(), MNT_DETACH); }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  // Gives the filesystem a new size, keeping its files: space comes back.
  void resize(const std::string& size) {
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) != 0)
      throw std::runtime_error("cannot resize the tmpfs on " + dir_.string() + ": " + std::strerror(errno));
  }

 private:
  explicit Tmpfs(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace distill::testing
