#include "actors/io_broker.hpp"

#include <unistd.h>

#include <unordered_map>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/atoms.hpp"

namespace certfleet {

caf::behavior io_broker(caf::io::broker* self, size_t read_chunk) {
  auto owners = std::make_shared<std::unordered_map<caf::io::connection_handle, caf::actor>>();
  // An owner that dies without closing its connection must not leak the socket.
  self->set_down_handler([=](const caf::down_msg& down) {
    for (auto it = owners->begin(); it != owners->end();) {
      if (it->second.address() == down.source) {
        self->close(it->first);
        it = owners->erase(it);
      } else {
        ++it;
      }
    }
  });
  return {
      [=](adopt_atom, int fd, const caf::actor& owner) {
        auto hdl = self->add_scribe(fd);
        (*owners)[hdl] = owner;
        self->monitor(owner);
        self->configure_read(hdl, caf::io::receive_policy::at_most(read_chunk));
        self->send(owner, adopted_atom::value, hdl);
      },
      [=](const caf::io::new_data_msg& msg) {
        auto it = owners->find(msg.handle);
        if (it != owners->end()) self->send(it->second, bytes_atom::value, msg.handle, msg.buf);
      },
      [=](write_atom, caf::io::connection_handle hdl, const std::vector<char>& bytes) {
        if (owners->count(hdl) == 0) return;
        self->write(hdl, bytes.size(), bytes.data());
        self->flush(hdl);
      },
      [=](close_atom, caf::io::connection_handle hdl) {
        if (owners->erase(hdl) > 0) self->close(hdl);
      },
      [=](const caf::io::connection_closed_msg& msg) {
        auto it = owners->find(msg.handle);
        if (it == owners->end()) return;
        self->send(it->second, disconnected_atom::value, msg.handle);
        owners->erase(it);
      },
      [=](stop_atom) {
        for (auto& [hdl, owner] : *owners) self->close(hdl);
        owners->clear();
        self->quit();
      },
  };
}

}  // namespace certfleet
