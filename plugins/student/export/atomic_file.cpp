// Atomic whole-file writes on top of io::OutputFile (see atomic_file.h).
#include "atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace distill::student {

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  temp_ = target_;
  temp_ += ".tmp-" + std::to_string(::getpid());
  try {
    out_ = std::make_unique<io::OutputFile>(temp_, 0);
  } catch (const std::exception& e) {
    fail(e);
  }
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  out_.reset();
  std::error_code ignored;
  std::filesystem::remove(temp_, ignored);
}

void AtomicFile::append(std::string_view bytes) {
  try {
    out_->append(bytes);
  } catch (const std::exception& e) {
    fail(e);
  }
}

void AtomicFile::commit() {
  try {
    out_->sync();
    out_.reset();
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
      throw std::runtime_error("cannot rename " + temp_.string() + ": " + std::strerror(errno));
    committed_ = true;
    io::sync_dir(target_.has_parent_path() ? target_.parent_path() : std::filesystem::path("."));
  } catch (const std::exception& e) {
    fail(e);
  }
}

void AtomicFile::fail(const std::exception& cause) const {
  throw std::runtime_error("cannot write " + target_.string() + ": " + cause.what());
}

void write_file_atomically(const std::filesystem::path& target, std::string_view bytes) {
  AtomicFile file(target);
  file.append(bytes);
  file.commit();
}

}  // namespace distill::student
