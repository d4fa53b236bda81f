// What the protocol fuzzer does with one input, shared with the GoogleTest that replays the seed
// corpus in every ctest run: feed the bytes to a frame decoder, decode every complete payload, and
// decode the whole input as one payload too. Any message that decodes must encode back to exactly
// the same bytes (the encoding is canonical); anything else is reported as a failure.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

namespace certfleet::fuzz {

struct replay_result {
  size_t frames = 0;             // complete frames the decoder produced
  size_t messages = 0;           // frames that decoded to a message
  std::string invariant_broken;  // empty unless a decoded message did not re-encode identically
};

inline void check_canonical(const uint8_t* data, size_t size, replay_result& r) {
  auto m = wire::decode(data, size);
  if (!m) return;
  ++r.messages;
  auto again = wire::encode(*m, data[0]);
  if (!again || again->size() != size || !std::equal(again->begin(), again->end(), data))
    r.invariant_broken = std::string{"a "} + wire::to_string(wire::type_of(*m)) +
                         " message decoded but does not re-encode to the same bytes";
}

inline replay_result replay(const uint8_t* data, size_t size) {
  replay_result r;
  // A small maximum keeps the fuzzer exploring the size checks instead of waiting for bodies.
  frame_decoder decoder{64 * 1024};
  (void)decoder.feed(data, size);
  while (auto payload = decoder.next()) {
    ++r.frames;
    check_canonical(payload->data(), payload->size(), r);
  }
  replay_result whole;
  check_canonical(data, size, whole);
  if (r.invariant_broken.empty()) r.invariant_broken = whole.invariant_broken;
  return r;
}

}  // namespace certfleet::fuzz
