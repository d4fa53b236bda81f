// Wire framing: every protocol message travels as a 4-byte big-endian length followed by that many
// payload bytes. A length of zero is never valid, and a length above the configured maximum is
// refused as soon as the 4-byte prefix has arrived, before any of the body is buffered: a hostile
// prefix costs nothing, and the buffer only ever grows with bytes actually received.
//
// `frame_decoder` is fed arbitrary chunks of a byte stream (as TLS hands over plaintext records)
// and queues every complete payload. The first error is final: a failed decoder refuses further
// input, because after a framing error the stream position is lost and the connection must close.
// Payloads are held in `secret_bytes` because a frame may carry a password (register_request).
//
// Thread-safety: none; one decoder per connection, owned by whoever owns the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "common/error.hpp"
#include "crypto/secret.hpp"

namespace certfleet {

/// 1 MiB: large enough for an inventory of thousands of jobs, small enough to bound memory per
/// peer.
inline constexpr size_t default_max_frame_size = size_t{1} << 20;

/// Size of the length prefix in front of every frame.
inline constexpr size_t frame_header_size = 4;

/// `payload` prefixed with its 4-byte big-endian length. Fails with `ec::frame_too_large` when the
/// payload exceeds `max_frame_size` and `ec::protocol_error` when it is empty.
caf::expected<secret_bytes> encode_frame(const uint8_t* payload, size_t size,
                                         size_t max_frame_size = default_max_frame_size);

class frame_decoder {
 public:
  /// `max_frame_size` must be between 1 and 2^32-1 bytes; larger values are clamped to 2^32-1.
  explicit frame_decoder(size_t max_frame_size = default_max_frame_size);

  frame_decoder(const frame_decoder&) = delete;
  frame_decoder& operator=(const frame_decoder&) = delete;
  frame_decoder(frame_decoder&&) = default;
  frame_decoder& operator=(frame_decoder&&) = default;

  /// Consumes `size` bytes. Complete payloads become available through `next()`. Returns
  /// `ec::protocol_error` for a zero length prefix, `ec::frame_too_large` for a prefix above the
  /// maximum, and the same error again for any later call once failed. Payloads completed before
  /// the bad prefix in the same chunk stay available.
  caf::error feed(const uint8_t* data, size_t size);

  /// The oldest complete payload not yet taken, or nothing.
  std::optional<secret_bytes> next();

  /// True once a framing error was seen.
  bool failed() const { return static_cast<bool>(error_); }

  /// Bytes of the frame currently being assembled (header included), for tests and diagnostics.
  size_t buffered() const { return header_fill_ + body_.size(); }

  size_t max_frame_size() const { return max_frame_size_; }

 private:
  size_t max_frame_size_;
  uint8_t header_[frame_header_size] = {};
  size_t header_fill_ = 0;
  size_t body_expected_ = 0;
  secret_bytes body_;
  std::deque<secret_bytes> ready_;
  caf::error error_;
};

}  // namespace certfleet
