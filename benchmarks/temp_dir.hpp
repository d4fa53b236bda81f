// A scratch directory for the benchmarks: created with mkdtemp under `base` (default: the system
// temp directory), removed with everything in it on destruction. Throws std::runtime_error when it
// cannot be created. Not thread-safe; one owner. (The tests have their own in tests/support; the
// benchmarks are built without the tests.)
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace certfleet::bench {

class temp_dir {
 public:
  explicit temp_dir(const std::filesystem::path& base = std::filesystem::temp_directory_path(),
                    const std::string& prefix = "certfleet-bench") {
    std::string templ = (base / (prefix + "-XXXXXX")).string();
    if (mkdtemp(templ.data()) == nullptr)
      throw std::runtime_error("mkdtemp under " + base.string() + " failed");
    path_ = templ;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace certfleet::bench
