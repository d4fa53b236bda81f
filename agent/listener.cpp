#include "agent/listener.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>

#include "common/address.hpp"
#include "common/fs.hpp"

namespace certfleet::agent {

std::string endpoint_text(const listen_address& a) {
  return format_address(a.host, a.port);
}

std::string peer_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return format_address(host, port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  port = ntohs(in6->sin6_port);
  return format_address(host, port);
}

std::string source_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, host, sizeof host);
  else
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, host,
                sizeof host);
  return host;
}

caf::expected<int> open_listener(listen_address& a) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, a.host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(a.port);
    len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, a.host.c_str(), &in6->sin6_addr) == 1) {
    family = AF_INET6;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a.port);
    len = sizeof(sockaddr_in6);
  } else {
    return make_error(ec::invalid_argument, "'" + a.host +
                                                "' is not an IPv4 or IPv6 address; give a "
                                                "literal such as 127.0.0.1");
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return make_error(ec::io_error,
                      "cannot create a socket for " + endpoint_text(a) + ": " + errno_text(errno) +
                          (errno == EMFILE ? "; raise the file-descriptor limit" : ""));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 512) != 0) {
    int err = errno;
    ::close(fd);
    return make_error(ec::io_error, "cannot listen on " + endpoint_text(a) + ": " +
                                        errno_text(err) +
                                        "; choose another address or port, or stop whatever "
                                        "uses it");
  }
  if (a.port == 0) {
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    a.port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  return fd;
}

}  // namespace certfleet::agent
