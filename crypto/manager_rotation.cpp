#include "crypto/manager_rotation.hpp"

#include <botan/ber_dec.h>
#include <botan/pk_keys.h>
#include <botan/x509cert.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <string>

namespace certfleet {
namespace {

bool is_p256(const Botan::X509_Certificate& cert) {
  const auto& algo = cert.subject_public_key_algo();
  // By OID (id-ecPublicKey, then the named curve P-256), as the TLS layer checks it.
  if (algo.get_oid() != Botan::OID{1, 2, 840, 10045, 2, 1}) return false;
  try {
    Botan::OID curve;
    Botan::BER_Decoder(algo.get_parameters()).decode(curve).verify_end();
    return curve == Botan::OID{1, 2, 840, 10045, 3, 1, 7};
  } catch (const std::exception&) {
    return false;
  }
}

caf::error refuse(const std::string& why) {
  return make_error(ec::invalid_argument, "the offered manager certificate " + why);
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

}  // namespace

caf::expected<thumbprint> check_successor_certificate(const std::vector<uint8_t>& der,
                                                      std::chrono::system_clock::time_point now,
                                                      std::chrono::seconds skew) {
  try {
    Botan::X509_Certificate cert(der);
    if (!is_p256(cert)) return refuse("does not have an ECDSA P-256 key");
    std::unique_ptr<Botan::Public_Key> key(cert.subject_public_key());
    if (!cert.check_signature(*key)) return refuse("is not validly self-signed by its own key");
    if (cert.not_before().to_std_timepoint() > now + skew)
      return refuse("is not valid yet (notBefore in the future; check both clocks)");
    if (cert.not_after().to_std_timepoint() < now) return refuse("has expired");
    return thumbprint::of_der(der);
  } catch (const std::exception& e) {
    return refuse(std::string{"is not a readable X.509 certificate: "} + e.what());
  }
}

caf::error scrub_file(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    return make_error(ec::io_error,
                      "cannot open " + file.string() + " to overwrite it: " + errno_text(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return make_error(ec::io_error, "cannot stat " + file.string() + ": " + errno_text(err));
  }
  std::vector<char> zeros(4096, 0);
  off_t left = st.st_size;
  while (left > 0) {
    auto n = ::write(fd, zeros.data(), static_cast<size_t>(std::min<off_t>(left, 4096)));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return make_error(ec::io_error, "cannot overwrite " + file.string() + ": " + errno_text(err));
    }
    left -= n;
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return make_error(ec::io_error, "cannot fsync " + file.string() + ": " + errno_text(err));
  }
  ::close(fd);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT)
    return make_error(ec::io_error, "cannot remove " + file.string() + ": " + errno_text(errno));
  return sync_directory(file.parent_path());
}

caf::expected<bool> retire_previous_identity(const certificate_store& store,
                                             const thumbprint& expected) {
  auto pointer = store.dir() / "previous";
  auto serial_bytes = read_file(pointer);
  if (!serial_bytes) {
    if (code_of(serial_bytes.error()) == ec::not_found) return false;
    return std::move(serial_bytes.error());
  }
  auto serial = trim(std::string(serial_bytes->begin(), serial_bytes->end()));
  auto base = store.dir() / serial;
  // Which identity the pointer names is read from its public certificate, so that a retirement
  // interrupted after the key was scrubbed is still recognised and finished.
  std::error_code missing;
  if (std::filesystem::exists(base.string() + ".crt", missing)) {
    try {
      Botan::X509_Certificate cert(base.string() + ".crt");
      if (thumbprint::of_der(cert.BER_encode()) != expected) return false;
    } catch (const std::exception& e) {
      return make_error(ec::corrupt_data, "cannot read " + base.string() + ".crt: " + e.what());
    }
  } else if (std::filesystem::exists(base.string() + ".key", missing)) {
    return make_error(ec::corrupt_data, base.string() +
                                            ".key has no certificate beside it; restore " +
                                            base.string() + ".crt or remove the key by hand");
  }
  // The key first: once it is gone, the identity is retired whatever happens to the rest.
  if (auto err = scrub_file(base.string() + ".key")) return err;
  for (const char* ext : {".crt", ".name"}) {
    std::error_code ignored;
    std::filesystem::remove(base.string() + ext, ignored);
  }
  std::error_code err;
  std::filesystem::remove(pointer, err);
  if (err)
    return make_error(ec::io_error, "cannot remove " + pointer.string() + ": " + err.message());
  if (auto e = sync_directory(store.dir())) return e;
  return true;
}

}  // namespace certfleet
