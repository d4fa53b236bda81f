#include "actors/refusal.hpp"

#include "common/peer_text.hpp"

namespace certfleet {

refusal_outcome interpret_denial(const wire::denied& d, const std::string& server_id) {
  using r = wire::denial_reason;
  const std::string credentials_fix =
      "'certfleet server credentials " + server_id + " --account USER --password-stdin'";
  refusal_outcome o;
  std::string what;
  std::string fix;
  switch (d.reason) {
    case r::bad_credentials:
      o.blocks = o.erase_credentials = true;
      what = "registration refused: unknown account or wrong password";
      fix = "give the right credentials with " + credentials_fix;
      break;
    case r::insufficient_role:
      o.blocks = o.erase_credentials = true;
      what = "registration refused: the account is not a Backup Administrator";
      fix = "give an administrator account with " + credentials_fix;
      break;
    case r::not_registered:
      o.blocks = true;
      what =
          "the server does not know this manager (its registration was revoked, or the "
          "server's data was reset)";
      fix = "register again with " + credentials_fix;
      break;
    case r::manager_revoked:
      o.blocks = true;
      what = "an administrator of the server revoked this manager's registration";
      fix = "if that was a mistake, register again with " + credentials_fix;
      break;
    case r::locked_out:
      what = "registration refused: the account is locked on the server after failed logins";
      fix =
          "retrying with backoff; unlock the account on the server, or give other credentials "
          "with " +
          credentials_fix;
      break;
    case r::not_accepting:
      what = "the server does not accept registrations at the moment";
      fix = "retrying with backoff; enable registrations on the server";
      break;
    case r::internal_error:
      what = "the server could not check or store the registration";
      fix = "retrying with backoff; look at the backup server's log";
      break;
    case r::thumbprint_mismatch:
      what =
          "the server saw another manager certificate than the one this manager named (a "
          "TLS-intercepting proxy between them, or a fault in this manager)";
      fix = "retrying with backoff; check the network path, and report it if it persists";
      break;
    case r::protocol_violation:
      what = "the server refused a message as a protocol violation";
      fix = "retrying with backoff; check that both sides run released certfleet versions";
      break;
    case r::unsupported_version:
      what = "the server speaks no protocol version in common with this manager";
      fix = "retrying with backoff; upgrade the older side";
      break;
    case r::certificate_changed:
      what = "the server's certificate changed while connected";
      fix = "reconnecting to see the new certificate; then validate its thumbprint";
      break;
  }
  if (what.empty()) {
    what = std::string{"the server refused the connection ("} + wire::to_string(d.reason) + ")";
    fix = "retrying with backoff";
  }
  o.last_error = what + " [" + wire::to_string(d.reason) + "]";
  if (!d.detail.empty()) o.last_error += ": the server says \"" + peer_text(d.detail) + "\"";
  o.last_error += "; " + fix;
  return o;
}

}  // namespace certfleet
