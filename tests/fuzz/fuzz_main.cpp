// libFuzzer entry for one parser target of tests/fuzz/targets.hpp, chosen at build time with
// CERTFLEET_FUZZ_TARGET (tests/fuzz/CMakeLists.txt builds one binary per target). Built only with
// -DCERTFLEET_FUZZ=ON and clang; run them through scripts/fuzz.sh.
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/fuzz/state_targets.hpp"
#include "tests/fuzz/targets.hpp"

namespace {

#define CERTFLEET_STR2(x) #x
#define CERTFLEET_STR(x) CERTFLEET_STR2(x)

// The sealed target's key, made once in a fresh directory. Never destroyed: Botan's secure memory
// must not be released after its pool is torn down at exit.
const certfleet::master_key& fuzz_key() {
  static const certfleet::master_key* key = [] {
    char dir[] = "/tmp/certfleet-fuzz-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    auto file = std::filesystem::path(dir) / "master.key";
    auto k = certfleet::master_key::create(file);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    if (!k) std::abort();
    return new certfleet::master_key(std::move(*k));
  }();
  return *key;
}

std::string run(const uint8_t* data, size_t size) {
  const std::string target = CERTFLEET_STR(CERTFLEET_FUZZ_TARGET);
  if (target == "control_request") return certfleet::fuzz::control_request(data, size);
  if (target == "config") return certfleet::fuzz::config(data, size);
  if (target == "thumbprint") return certfleet::fuzz::thumbprint_text(data, size);
  if (target == "records") return certfleet::fuzz::records(data, size);
  if (target == "sealed") return certfleet::fuzz::sealed(fuzz_key(), data, size);
  if (target == "manifest") return certfleet::fuzz::manifest(data, size);
  if (target == "tls_sessions") return certfleet::fuzz::tls_sessions(fuzz_key(), data, size);
  if (target == "agent_state") return certfleet::fuzz::agent_state(data, size);
  if (target == "agent_records") return certfleet::fuzz::agent_records(data, size);
  std::fprintf(stderr, "unknown fuzz target %s\n", target.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto broken = run(data, size);
  if (!broken.empty()) {
    std::fprintf(stderr, "%s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
