#include "crypto/secret.hpp"

#include <botan/mem_ops.h>

namespace certfleet::detail {

// Botan's allocator: its locked pool when one is available, calloc otherwise; release scrubs the
// bytes (secure_scrub_memory) before returning them.
void* allocate_secret(size_t count, size_t size) {
  if (count == 0) return nullptr;
  return Botan::allocate_memory(count, size);  // throws std::bad_alloc
}

void deallocate_secret(void* p, size_t count, size_t size) noexcept {
  if (p != nullptr) Botan::deallocate_memory(p, count, size);
}

}  // namespace certfleet::detail
