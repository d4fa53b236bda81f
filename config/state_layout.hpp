// Where things live inside a state directory. One place, so the CLI, the daemon and the tests
// agree on paths.
//
//   <state>/              mode 0700
//   <state>/certs/        the certificate store (crypto/certificate_store.hpp), mode 0700
//   <state>/master.key    the 256-bit sealing key, mode 0600 (never in the database)
//   <state>/db/           RocksDB (storage/state_store.hpp)
//   <state>/control.sock  the daemon's control socket, mode 0600
//   <state>/tls-sessions  the manager's TLS sessions, each sealed under master.key, mode 0600;
//                         written at an orderly stop, read at start (protocol/tls_session.hpp)
#pragma once

#include <filesystem>

namespace certfleet {

struct state_layout {
  std::filesystem::path root;

  std::filesystem::path certs_dir() const { return root / "certs"; }
  std::filesystem::path master_key_file() const { return root / "master.key"; }
  std::filesystem::path db_dir() const { return root / "db"; }
  std::filesystem::path control_socket() const { return root / "control.sock"; }
  std::filesystem::path tls_sessions_file() const { return root / "tls-sessions"; }
};

}  // namespace certfleet
