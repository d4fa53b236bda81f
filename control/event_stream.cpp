#include "control/event_stream.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <mutex>

#include "common/fs.hpp"
#include "control/replies.hpp"

namespace certfleet::control {
namespace {

using json = nlohmann::json;
using jsonl::dump_line;

/// What one subscriber's connection and the manager's bus thread share. The bus side only appends
/// under a short lock and signals the eventfd; it never waits for the connection.
struct subscriber_queue {
  std::mutex mutex;
  std::deque<std::string> lines;
  size_t max_lines = 0;
  uint64_t last_seq = 0;   // seq of the last event queued (or skipped by the local filter)
  uint64_t replay_to = 0;  // follow=false: stop once this seq has been seen
  bool follow = true;
  event_filter local_filter;  // follow=false filters here, so every seq is seen
  bool replay_done = false;
  bool cut_off = false;
  std::string cut_reason;
  int wake_fd = -1;

  void wake() {
    uint64_t one = 1;
    // Non-blocking eventfd: a full counter still means "wake up", so a failed write is harmless.
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof(one));
  }

  bool on_event(const event_record& e) {
    std::lock_guard<std::mutex> lock(mutex);
    if (replay_done || cut_off) return false;
    bool wanted = (local_filter.type.empty() || local_filter.type == e.type) &&
                  (local_filter.server_id.empty() || local_filter.server_id == e.server_id);
    if (wanted) {
      if (lines.size() >= max_lines) {
        cut_off = true;
        cut_reason =
            "the subscriber fell behind: " + std::to_string(max_lines) +
            " events were waiting to be sent; resubscribe with since=" + std::to_string(last_seq) +
            " to continue without loss";
        wake();
        return false;
      }
      lines.push_back(dump_line(json{{"event", event_json(e)}}));
    }
    last_seq = e.seq;
    if (!follow && e.seq >= replay_to) replay_done = true;
    wake();
    return !replay_done;
  }

  void on_cutoff(uint64_t manager_last_seq, const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex);
    if (cut_off || replay_done) return;
    cut_off = true;
    // The manager's count can run ahead of what this queue kept; resuming from the lower is safe.
    last_seq = std::min(last_seq, manager_last_seq);
    cut_reason = why;
    wake();
  }
};

bool stream(jsonl::connection& c, subscriber_queue& q, const json& id) {
  char sink[4096];
  for (;;) {
    pollfd fds[2] = {{c.fd(), POLLIN, 0}, {q.wake_fd, POLLIN, 0}};
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
    [[maybe_unused]] auto r = ::read(q.wake_fd, &counter, sizeof(counter));
    std::deque<std::string> lines;
    bool done, cut;
    uint64_t last;
    std::string reason;
    {
      std::lock_guard<std::mutex> lock(q.mutex);
      lines.swap(q.lines);
      done = q.replay_done;
      cut = q.cut_off;
      last = q.last_seq;
      reason = q.cut_reason;
    }
    for (const auto& l : lines)
      if (!c.write(l)) return false;
    if (cut) {
      c.write(dump_line(json{{"cutoff", {{"last_seq", last}, {"reason", reason}}}}));
      return false;
    }
    if (done) return c.write(ok_reply(id, json{{"last_seq", last}}));
  }
}
}  // namespace

/// Streams events until the replay ends (follow=false), a cutoff, the client leaving or stop().
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
  auto q = std::make_shared<subscriber_queue>();
  q->max_lines = queue_lines;
  q->follow = *follow;
  q->last_seq = *since;
  if (!*follow) {
    // Replay up to the newest event now stored. Filtering locally means every seq passes
    // through the queue, so the end of the replay is seen even when it does not match.
    q->replay_to = m.status().last_event_seq;
    if (q->replay_to <= *since) return c.write(ok_reply(req.id, json{{"last_seq", *since}}));
    q->local_filter = filter;
    filter = event_filter{};
  }
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0)
    return c.write(error_reply(
        req.id, make_error(ec::io_error, "cannot create an eventfd: " + errno_text(errno))));
  q->wake_fd = wake;
  auto sub = m.subscribe(
      *since, filter, [q](const event_record& e) { return q->on_event(e); },
      [q](uint64_t last, const std::string& why) { q->on_cutoff(last, why); });
  if (!sub) {
    ::close(wake);
    return c.write(error_reply(req.id, sub.error()));
  }
  bool keep_connection = stream(c, *q, req.id);
  // Unsubscribe first: after that the bus no longer touches the queue's eventfd.
  sub->reset();
  {
    std::lock_guard<std::mutex> lock(q->mutex);
    q->wake_fd = -1;
    q->cut_off = true;
  }
  ::close(wake);
  return keep_connection;
}

}  // namespace certfleet::control
