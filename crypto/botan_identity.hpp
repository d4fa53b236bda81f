// Internal: the Botan objects behind an `identity`, for protocol/ (TLS credentials) only.
// Nothing outside crypto/ and protocol/ may include this header.
#pragma once

#include <memory>
#include <string>

#include <botan/pk_keys.h>
#include <botan/x509cert.h>

#include "crypto/identity.hpp"

namespace certfleet {

struct identity::impl {
  std::shared_ptr<Botan::Private_Key> key;
  Botan::X509_Certificate certificate;
  std::string friendly_name;
};

}  // namespace certfleet
