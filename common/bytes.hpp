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
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  void bytes(const uint8_t* data, size_t n) {
    u32(static_cast<uint32_t>(n));
    buf_.insert(buf_.end(), data, data + n);
  }
  void raw(const uint8_t* data, size_t n) { buf_.insert(buf_.end(), data, data + n); }
  const std::vector<uint8_t>& data() const { return buf_; }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  void put_be(uint64_t x, int n) {
    for (int i = n - 1; i >= 0; --i) buf_.push_back(static_cast<uint8_t>(x >> (8 * i)));
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
