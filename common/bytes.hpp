// Bounds-checked binary encoding shared by the wire protocol and the storage record format.
//
// `byte_writer` appends big-endian integers and length-prefixed strings to a vector it owns.
// `byte_reader` reads them back from a borrowed buffer and never reads past its end: every getter
// returns false once the input is exhausted or a length prefix points past the end, and the reader
// stays failed. Lengths are validated before anything is allocated, so hostile input cannot make it
// allocate more than the input holds.
//
// Thread-safety: none; one instance per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace certfleet {

class byte_writer {
 public:
  void u8(uint8_t x) { buf_.push_back(x); }
  void u16(uint16_t x) { put_be(x, 2); }
  void u32(uint32_t x) { put_be(x, 4); }
  void u64(uint64_t x) { put_be(x, 8); }
  void i64(int64_t x) { put_be(static_cast<uint64_t>(x), 8); }
  /// A 4-byte length followed by the bytes.
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    append(s.data(), s.size());
  }
  void bytes(const uint8_t* data, size_t n) {
    u32(static_cast<uint32_t>(n));
    append(data, n);
  }
  void raw(const uint8_t* data, size_t n) { append(data, n); }
  const std::vector<uint8_t>& data() const { return buf_; }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  // Grow once, then write in place: g++ 12 at -O3 reports a false stringop-overflow for
  // vector::insert right after push_back (docs/platform.md, "g++ 12").
  uint8_t* grow(size_t n) {
    size_t at = buf_.size();
    buf_.resize(at + n);
    return buf_.data() + at;
  }
  void append(const void* data, size_t n) {
    if (n != 0) std::memcpy(grow(n), data, n);
  }
  void put_be(uint64_t x, size_t n) {
    uint8_t* out = grow(n);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(x >> (8 * (n - 1 - i)));
  }
  std::vector<uint8_t> buf_;
};

class byte_reader {
 public:
  byte_reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  explicit byte_reader(const std::vector<uint8_t>& v) : byte_reader(v.data(), v.size()) {}

  bool u8(uint8_t& x) {
    uint64_t v;
    if (!get_be(v, 1)) return false;
    x = static_cast<uint8_t>(v);
    return true;
  }
  bool u16(uint16_t& x) {
    uint64_t v;
    if (!get_be(v, 2)) return false;
    x = static_cast<uint16_t>(v);
    return true;
  }
  bool u32(uint32_t& x) {
    uint64_t v;
    if (!get_be(v, 4)) return false;
    x = static_cast<uint32_t>(v);
    return true;
  }
  bool u64(uint64_t& x) { return get_be(x, 8); }
  bool i64(int64_t& x) {
    uint64_t v;
    if (!get_be(v, 8)) return false;
    x = static_cast<int64_t>(v);
    return true;
  }
  /// Reads a length-prefixed string of at most `max_len` bytes.
  bool str(std::string& out, size_t max_len = 1 << 20) {
    uint32_t n;
    if (!u32(n) || n > max_len || n > remaining()) return fail();
    out.assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return true;
  }
  bool bytes(std::vector<uint8_t>& out, size_t max_len = 1 << 20) {
    uint32_t n;
    if (!u32(n) || n > max_len || n > remaining()) return fail();
    out.assign(data_ + pos_, data_ + pos_ + n);
    pos_ += n;
    return true;
  }
  /// Reads exactly `n` raw bytes into `out`.
  bool raw(uint8_t* out, size_t n) {
    if (failed_ || n > remaining()) return fail();
    std::copy(data_ + pos_, data_ + pos_ + n, out);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return failed_ ? 0 : size_ - pos_; }
  /// True when every byte was consumed and nothing failed.
  bool at_end() const { return !failed_ && pos_ == size_; }
  bool failed() const { return failed_; }

 private:
  bool fail() {
    failed_ = true;
    return false;
  }
  bool get_be(uint64_t& x, size_t n) {
    if (failed_ || n > remaining()) return fail();
    x = 0;
    for (size_t i = 0; i < n; ++i) x = (x << 8) | data_[pos_ + i];
    pos_ += n;
    return true;
  }
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace certfleet
