#include "protocol/frame.hpp"

#include <algorithm>
#include <string>

namespace certfleet {
namespace {

constexpr size_t max_representable = 0xFFFFFFFFu;

}  // namespace

caf::expected<secret_bytes> encode_frame(const uint8_t* payload, size_t size,
                                         size_t max_frame_size) {
  max_frame_size = std::min(max_frame_size, max_representable);
  if (size == 0)
    return make_error(ec::protocol_error,
                      "refusing to send an empty frame; every protocol message has a header");
  if (size > max_frame_size)
    return make_error(ec::frame_too_large, "a message of " + std::to_string(size) +
                                               " bytes exceeds the maximum frame size of " +
                                               std::to_string(max_frame_size) + " bytes");
  secret_bytes out;
  out.reserve(frame_header_size + size);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<uint8_t>(static_cast<uint32_t>(size) >> shift));
  out.insert(out.end(), payload, payload + size);
  return out;
}

frame_decoder::frame_decoder(size_t max_frame_size)
    : max_frame_size_(std::clamp<size_t>(max_frame_size, 1, max_representable)) {}

caf::error frame_decoder::feed(const uint8_t* data, size_t size) {
  if (error_) return error_;
  size_t pos = 0;
  while (pos < size) {
    if (header_fill_ < frame_header_size) {
      size_t n = std::min(frame_header_size - header_fill_, size - pos);
      std::copy(data + pos, data + pos + n, header_ + header_fill_);
      header_fill_ += n;
      pos += n;
      if (header_fill_ < frame_header_size) break;
      size_t length = (size_t{header_[0]} << 24) | (size_t{header_[1]} << 16) |
                      (size_t{header_[2]} << 8) | size_t{header_[3]};
      if (length == 0) {
        error_ = make_error(ec::protocol_error,
                            "the peer sent a frame with length 0, which the protocol never "
                            "uses; the connection must be closed");
        return error_;
      }
      if (length > max_frame_size_) {
        error_ = make_error(ec::frame_too_large,
                            "the peer announced a frame of " + std::to_string(length) +
                                " bytes, above the maximum of " + std::to_string(max_frame_size_) +
                                " bytes; the connection must be closed");
        return error_;
      }
      body_expected_ = length;
      continue;
    }
    // Append only what arrived: the announced length is the peer's claim, not a reason to allocate.
    size_t n = std::min(body_expected_ - body_.size(), size - pos);
    body_.insert(body_.end(), data + pos, data + pos + n);
    pos += n;
    if (body_.size() == body_expected_) {
      ready_.push_back(std::move(body_));
      body_ = secret_bytes{};
      header_fill_ = 0;
      body_expected_ = 0;
    }
  }
  return {};
}

std::optional<secret_bytes> frame_decoder::next() {
  if (ready_.empty()) return std::nullopt;
  auto out = std::move(ready_.front());
  ready_.pop_front();
  return out;
}

}  // namespace certfleet
