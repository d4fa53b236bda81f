#include "actors/admission_actor.hpp"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>

#include "actors/atoms.hpp"

namespace certfleet {
namespace {

struct admission_data {
  size_t cap = 1;
  size_t in_flight = 0;
  std::deque<caf::actor> waiting;
  std::unordered_map<caf::actor_addr, size_t> holders;
  std::unordered_map<caf::actor_addr, size_t> queued;  // entries of `waiting` per actor
  std::unordered_set<caf::actor_addr> monitored;
  static inline const char* name = "certfleet.admission";
};

using admission_actor = caf::stateful_actor<admission_data>;

void grant_slots(admission_actor* self) {
  auto& st = self->state;
  while (st.in_flight < st.cap && !st.waiting.empty()) {
    auto next = std::move(st.waiting.front());
    st.waiting.pop_front();
    if (auto q = st.queued.find(next.address()); q != st.queued.end() && --q->second == 0)
      st.queued.erase(q);
    ++st.in_flight;
    ++st.holders[next.address()];
    self->send(next, slot_atom::value);
  }
}

caf::behavior admission(admission_actor* self, size_t cap) {
  self->state.cap = std::max<size_t>(1, cap);
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& st = self->state;
    st.monitored.erase(down.source);
    st.queued.erase(down.source);
    for (auto it = st.waiting.begin(); it != st.waiting.end();)
      it = it->address() == down.source ? st.waiting.erase(it) : it + 1;
    if (auto h = st.holders.find(down.source); h != st.holders.end()) {
      st.in_flight -= h->second;
      st.holders.erase(h);
    }
    grant_slots(self);
  });
  return {
      [=](slot_atom) {
        auto& st = self->state;
        auto who = caf::actor_cast<caf::actor>(self->current_sender());
        if (!who) return;
        if (st.monitored.insert(who.address()).second) self->monitor(who);
        ++st.queued[who.address()];
        st.waiting.push_back(std::move(who));
        grant_slots(self);
      },
      [=](release_atom) {
        auto& st = self->state;
        auto who = caf::actor_cast<caf::actor_addr>(self->current_sender());
        auto h = st.holders.find(who);
        if (h == st.holders.end() || h->second == 0) return;
        if (--h->second == 0) {
          st.holders.erase(h);
          // Most of a fleet holds nothing most of the time: no monitor per idle server.
          if (st.queued.count(who) == 0 && st.monitored.erase(who) > 0) self->demonitor(who);
        }
        --st.in_flight;
        grant_slots(self);
      },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

caf::actor spawn_admission_actor(caf::actor_system& sys, size_t max_concurrent_handshakes) {
  return sys.spawn(admission, max_concurrent_handshakes);
}

}  // namespace certfleet
