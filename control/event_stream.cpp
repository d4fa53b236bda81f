#include "control/event_stream.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "common/fs.hpp"
#include "control/replies.hpp"

namespace certfleet::control {
namespace {

using json = nlohmann::json;
using jsonl::dump_line;

/// What the subscription's delivery thread and the connection's thread share. The delivery thread
/// (the bus's one queue per subscriber drains into it) writes event lines to the socket itself;
/// the connection thread waits for the end of the stream and writes the final reply after the
/// subscription is gone, so the two never write at once.
struct stream_state {
  explicit stream_state(jsonl::connection& conn) : c(conn) {}

  jsonl::connection& c;
  std::mutex mutex;
  uint64_t last_seq = 0;   // last event written (or passed over by the local filter)
  uint64_t replay_to = 0;  // follow=false: stop once this seq has been seen
  bool follow = true;
  event_filter local_filter;  // follow=false filters here, so every seq is seen
  bool replay_done = false;
  bool cut_off = false;
  bool broken = false;  // the client is gone
  int wake_fd = -1;

  void wake() {
    uint64_t one = 1;
    // Non-blocking eventfd: a full counter still means "wake up", so a failed write is harmless.
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof(one));
  }

  /// Delivery thread. Blocking in write holds back this subscriber only: the bus cuts it off when
  /// its queue is full.
  bool on_event(const event_record& e) {
    bool wanted = (local_filter.type.empty() || local_filter.type == e.type) &&
                  (local_filter.server_id.empty() || local_filter.server_id == e.server_id);
    if (wanted && !c.write(dump_line(json{{"event", event_json(e)}}))) {
      std::lock_guard<std::mutex> lock(mutex);
      broken = true;
      wake();
      return false;
    }
    std::lock_guard<std::mutex> lock(mutex);
    last_seq = e.seq;
    if (!follow && e.seq >= replay_to) {
      replay_done = true;
      wake();
      return false;
    }
    return true;
  }

  /// Delivery thread, after every queued event was written.
  void on_cutoff(uint64_t delivered, const std::string& why) {
    uint64_t last;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (cut_off || replay_done || broken) return;
      // The bus counts what it delivered; resuming from the lower of the two is safe.
      last = std::min(last_seq, delivered);
    }
    c.write(dump_line(
        json{{"cutoff",
              {{"last_seq", last},
               {"reason", "the subscriber fell behind (" + why + "); resubscribe with since=" +
                              std::to_string(last) + " to continue without loss"}}}}));
    std::lock_guard<std::mutex> lock(mutex);
    cut_off = true;
    wake();
  }
};

/// Connection thread: waits until the stream ends. Returns true when the replay finished
/// (follow=false) and the final reply is due.
bool wait_for_end(jsonl::connection& c, stream_state& st) {
  char sink[4096];
  for (;;) {
    pollfd fds[2] = {{c.fd(), POLLIN, 0}, {st.wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (c.stopping()) return false;
    if (fds[0].revents) {
      // A streaming connection takes no further requests: input is discarded, EOF ends it.
      auto n = ::recv(c.fd(), sink, sizeof(sink), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
    }
    if (!fds[1].revents) continue;
    uint64_t counter;
    [[maybe_unused]] auto r = ::read(st.wake_fd, &counter, sizeof(counter));
    std::lock_guard<std::mutex> lock(st.mutex);
    if (st.broken || st.cut_off) return false;
    if (st.replay_done) return true;
  }
}

}  // namespace

bool stream_events(jsonl::connection& c, manager& m, const request& req, size_t queue_lines) {
  auto since = uint_arg(req, "since", 0, UINT64_MAX);
  auto type = optional_string_arg(req, "type");
  auto server = optional_string_arg(req, "server");
  auto follow = bool_arg(req, "follow", false);
  caf::error bad;
  if (!since)
    bad = since.error();
  else if (!type)
    bad = type.error();
  else if (!server)
    bad = server.error();
  else if (!follow)
    bad = follow.error();
  if (!bad && *type && !type->value().empty()) {
    if (!parse_event_type(**type)) {
      std::string list;
      for (const auto& t : event_types()) list += (list.empty() ? "" : ", ") + t;
      bad = make_error(ec::invalid_argument,
                       "events.subscribe: unknown event type \"" + **type + "\"; known: " + list);
    }
  }
  if (bad) return c.write(error_reply(req.id, bad));

  event_filter filter{type->value_or(""), server->value_or("")};
  auto st = std::make_shared<stream_state>(c);
  st->follow = *follow;
  st->last_seq = *since;
  if (!*follow) {
    // Replay up to the newest event now stored. Filtering locally means every seq passes through
    // the stream, so the end of the replay is seen even when it does not match.
    st->replay_to = m.status().last_event_seq;
    if (st->replay_to <= *since) return c.write(ok_reply(req.id, json{{"last_seq", *since}}));
    st->local_filter = filter;
    filter = event_filter{};
  }
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0)
    return c.write(error_reply(
        req.id, make_error(ec::io_error, "cannot create an eventfd: " + errno_text(errno))));
  st->wake_fd = wake;
  auto sub = m.subscribe(
      *since, filter, [st](const event_record& e) { return st->on_event(e); },
      [st](uint64_t last, const std::string& why) { st->on_cutoff(last, why); }, queue_lines);
  if (!sub) {
    ::close(wake);
    return c.write(error_reply(req.id, sub.error()));
  }
  bool replayed = wait_for_end(c, *st);
  // Unsubscribing joins the delivery thread: after it, nothing else writes to the socket or
  // touches the eventfd.
  sub->reset();
  ::close(wake);
  if (!replayed) return false;
  uint64_t last;
  {
    std::lock_guard<std::mutex> lock(st->mutex);
    last = st->last_seq;
  }
  return c.write(ok_reply(req.id, json{{"last_seq", last}}));
}

}  // namespace certfleet::control
