#include "protocol/session_forget.hpp"

#include <botan/tls_server_info.h>
#include <botan/tls_session.h>
#include <botan/tls_session_manager.h>

namespace certfleet {

void forget_client_session(tls_session_cache& cache, const std::string& host, uint16_t port) {
  Botan::TLS::Session session;
  // The same server information the client session is made with (protocol/tls_session.cpp).
  if (cache.manager().load_from_server_info(Botan::TLS::Server_Information(host, port), session))
    cache.manager().remove_entry(session.session_id());
}

}  // namespace certfleet
