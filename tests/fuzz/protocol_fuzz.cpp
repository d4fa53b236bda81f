// libFuzzer entry for the wire protocol: frames and messages from hostile bytes. Built only with
// -DCERTFLEET_FUZZ=ON and clang; run it through scripts/fuzz.sh.
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/replay.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = certfleet::fuzz::replay(data, size);
  if (!r.invariant_broken.empty()) {
    std::fprintf(stderr, "%s\n", r.invariant_broken.c_str());
    std::abort();
  }
  return 0;
}
