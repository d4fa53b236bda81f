#include "crypto/identity.hpp"

#include <botan/bigint.h>
#include <botan/data_src.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/exceptn.h>
#include <botan/hex.h>
#include <botan/mem_ops.h>
#include <botan/pkcs8.h>
#include <botan/pubkey.h>
#include <botan/system_rng.h>
#include <botan/x509_ca.h>
#include <botan/x509_ext.h>

#include <ctime>

#include "crypto/botan_identity.hpp"
#include "crypto/certificate_info.hpp"

namespace certfleet {
namespace {

// 128 bits with the top bit set, so every serial has exactly that length (RFC 5280 allows up to
// 20 octets; DER adds one sign byte, making 17).
constexpr size_t serial_bits = 128;

std::string iso8601(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string describe_dn(const Botan::X509_DN& dn) {
  std::string out;
  auto append = [&](const char* label, const char* attr) {
    auto value = dn.get_first_attribute(attr);
    if (value.empty()) return;
    if (!out.empty()) out += ", ";
    out += label;
    out += '=';
    out += value;
  };
  append("CN", "X520.CommonName");
  append("O", "X520.Organization");
  return out;
}

std::string describe_key(const Botan::Public_Key& key) {
  if (auto* ec = dynamic_cast<const Botan::EC_PublicKey*>(&key)) {
    if (ec->domain().get_curve_oid() == Botan::OID::from_string("secp256r1"))
      return key.algo_name() + " P-256";
    return key.algo_name() + " " + ec->domain().get_curve_oid().to_formatted_string();
  }
  return key.algo_name();
}

}  // namespace

caf::expected<identity> identity::generate(const identity_subject& subject,
                                           std::chrono::hours validity, std::string friendly_name,
                                           std::chrono::system_clock::time_point now) {
  if (subject.common_name.empty())
    return make_error(ec::invalid_argument,
                      "cannot generate a certificate with an empty common name; set one");
  if (validity.count() <= 0)
    return make_error(ec::invalid_argument, "certificate validity must be positive, got " +
                                                std::to_string(validity.count()) + " hours");
  try {
    auto& rng = Botan::system_rng();
    auto key = std::make_shared<Botan::ECDSA_PrivateKey>(rng, Botan::EC_Group("secp256r1"));

    Botan::X509_DN dn;
    dn.add_attribute("X520.CommonName", subject.common_name);
    if (!subject.organization.empty()) dn.add_attribute("X520.Organization", subject.organization);

    // Built by hand rather than with X509::create_self_signed_cert so every extension is stated
    // here: a leaf must not carry keyCertSign (docs/platform.md).
    auto public_key = key->subject_public_key();
    Botan::Extensions extensions;
    extensions.add(new Botan::Cert_Extension::Basic_Constraints(false), true);
    extensions.add(new Botan::Cert_Extension::Key_Usage(Botan::DIGITAL_SIGNATURE), true);
    extensions.add(new Botan::Cert_Extension::Extended_Key_Usage(
        {Botan::OID::from_string("PKIX.ServerAuth"), Botan::OID::from_string("PKIX.ClientAuth")}));
    auto key_id = Botan::Cert_Extension::Subject_Key_ID(public_key, "SHA-256").get_key_id();
    extensions.add(new Botan::Cert_Extension::Subject_Key_ID(key_id));
    extensions.add(new Botan::Cert_Extension::Authority_Key_ID(key_id));

    Botan::AlgorithmIdentifier sig_algo;
    std::unique_ptr<Botan::PK_Signer> signer{
        Botan::choose_sig_format(*key, rng, "SHA-256", sig_algo)};
    auto cert = Botan::X509_CA::make_cert(signer.get(), rng, Botan::BigInt(rng, serial_bits),
                                          sig_algo, public_key, Botan::X509_Time(now),
                                          Botan::X509_Time(now + validity), dn, dn, extensions);
    return identity{std::make_shared<const impl>(
        impl{std::move(key), std::move(cert), std::move(friendly_name)})};
  } catch (const std::exception& e) {
    return make_error(ec::crypto_failure,
                      std::string{"generating a key and certificate failed: "} + e.what());
  }
}

caf::expected<identity> identity::from_pem(const secret_bytes& key_pem, const std::string& cert_pem,
                                           std::string friendly_name) {
  std::unique_ptr<Botan::Private_Key> key;
  try {
    Botan::DataSource_Memory source{key_pem.data(), key_pem.size()};
    key = Botan::PKCS8::load_key(source);
  } catch (const std::exception& e) {
    return make_error(ec::corrupt_data,
                      std::string{"the private key is not a readable PKCS#8 PEM key: "} + e.what());
  }
  try {
    Botan::DataSource_Memory source{cert_pem};
    Botan::X509_Certificate cert{source};
    // Compare re-encoded public points so a difference in how the SPKI was encoded cannot matter.
    if (cert.load_subject_public_key()->public_key_bits() != key->public_key_bits())
      return make_error(ec::corrupt_data,
                        "the private key does not belong to the certificate for " +
                            cert.subject_dn().get_first_attribute("X520.CommonName") +
                            "; restore the matching key and certificate pair");
    return identity{
        std::make_shared<const impl>(impl{std::shared_ptr<Botan::Private_Key>(std::move(key)),
                                          std::move(cert), std::move(friendly_name)})};
  } catch (const std::exception& e) {
    return make_error(
        ec::corrupt_data,
        std::string{"the certificate is not a readable PEM certificate: "} + e.what());
  }
}

const std::string& identity::friendly_name() const {
  return impl_->friendly_name;
}

thumbprint identity::sha256() const {
  return thumbprint::of_der(certificate_der());
}

sha1_thumbprint identity::sha1() const {
  return sha1_thumbprint::of_der(certificate_der());
}

std::chrono::system_clock::time_point identity::not_before() const {
  return impl_->certificate.not_before().to_std_timepoint();
}

std::chrono::system_clock::time_point identity::not_after() const {
  return impl_->certificate.not_after().to_std_timepoint();
}

certificate_summary identity::summary() const {
  const auto& cert = impl_->certificate;
  certificate_summary s;
  s.friendly_name = impl_->friendly_name;
  s.subject = describe_dn(cert.subject_dn());
  s.issuer = describe_dn(cert.issuer_dn());
  s.serial = Botan::hex_encode(cert.serial_number(), true);
  s.not_before = iso8601(not_before());
  s.not_after = iso8601(not_after());
  s.key_algorithm = describe_key(*impl_->key);
  auto der = certificate_der();
  s.sha256 = thumbprint::of_der(der);
  s.sha1 = sha1_thumbprint::of_der(der);
  return s;
}

std::vector<uint8_t> identity::certificate_der() const {
  return impl_->certificate.BER_encode();
}

std::string identity::certificate_pem() const {
  return impl_->certificate.PEM_encode();
}

secret_bytes identity::private_key_pem() const {
  auto pem = Botan::PKCS8::PEM_encode(*impl_->key);
  auto out = to_secret(pem);
  // PEM_encode can only return a plain string; scrub it rather than leave the key on the heap.
  Botan::secure_scrub_memory(pem.data(), pem.size());
  return out;
}

}  // namespace certfleet

// Peer certificates (crypto/certificate_info.hpp): here, beside the summary helpers they share.
namespace certfleet {

caf::expected<certificate_summary> summarize_certificate(const std::vector<uint8_t>& der) {
  try {
    Botan::X509_Certificate cert(der);
    certificate_summary s;
    s.subject = describe_dn(cert.subject_dn());
    s.issuer = describe_dn(cert.issuer_dn());
    s.serial = Botan::hex_encode(cert.serial_number(), true);
    s.not_before = iso8601(cert.not_before().to_std_timepoint());
    s.not_after = iso8601(cert.not_after().to_std_timepoint());
    std::unique_ptr<Botan::Public_Key> key(cert.subject_public_key());
    s.key_algorithm = describe_key(*key);
    s.sha256 = thumbprint::of_der(der);
    s.sha1 = sha1_thumbprint::of_der(der);
    return s;
  } catch (const std::exception& e) {
    return make_error(ec::corrupt_data,
                      std::string{"the stored certificate is not readable: "} + e.what());
  }
}

caf::expected<std::string> certificate_pem_of(const std::vector<uint8_t>& der) {
  try {
    return Botan::X509_Certificate(der).PEM_encode();
  } catch (const std::exception& e) {
    return make_error(ec::corrupt_data,
                      std::string{"the stored certificate is not readable: "} + e.what());
  }
}

}  // namespace certfleet
