// The one container for secrets in memory: passwords, master keys, plaintext credentials.
//
// `secret_bytes` is a byte vector whose allocator takes memory from Botan's locked pool where it
// can (mlock'ed pages that are not swapped out) and zeroes every byte before releasing it,
// including the old buffer when the vector grows. The allocator is implemented in
// crypto/secret.cpp, so this header includes no Botan header and may be used anywhere (storage/,
// actors/, agent/). Inside crypto/ and protocol/, crypto/botan_secret.hpp converts to and from
// Botan's own `secure_vector`.
//
// Thread-safety: the allocator is stateless and safe to use from any thread; a `secret_bytes` is as
// thread-safe as a std::vector. Objects holding secrets must not live in static storage
// (docs/platform.md: the locked pool is torn down before static destructors run).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string_view>
#include <vector>

namespace certfleet {

namespace detail {
/// `count * size` bytes of zeroed memory, locked where possible. Throws std::bad_alloc on failure.
void* allocate_secret(size_t count, size_t size);
/// Zeroes the `count * size` bytes at `p`, then releases them. `p` may be null.
void deallocate_secret(void* p, size_t count, size_t size) noexcept;
}  // namespace detail

/// A standard allocator that zeroes memory before releasing it (see the file comment).
template <class T>
struct secret_allocator {
  using value_type = T;

  secret_allocator() noexcept = default;
  template <class U>
  secret_allocator(const secret_allocator<U>&) noexcept {}  // NOLINT: allocator rebinding

  T* allocate(size_t n) { return static_cast<T*>(detail::allocate_secret(n, sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { detail::deallocate_secret(p, n, sizeof(T)); }
};

template <class T, class U>
bool operator==(const secret_allocator<T>&, const secret_allocator<U>&) noexcept {
  return true;
}
template <class T, class U>
bool operator!=(const secret_allocator<T>&, const secret_allocator<U>&) noexcept {
  return false;
}

using secret_bytes = std::vector<uint8_t, secret_allocator<uint8_t>>;

/// Copies `s` into a secret buffer. The caller is responsible for the lifetime of `s` itself.
inline secret_bytes to_secret(std::string_view s) {
  return secret_bytes(reinterpret_cast<const uint8_t*>(s.data()),
                      reinterpret_cast<const uint8_t*>(s.data()) + s.size());
}

}  // namespace certfleet
