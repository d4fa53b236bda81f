#include "actors/event_bus.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "actors/atoms.hpp"

namespace certfleet {
namespace {

using pump_atom = caf::atom_constant<caf::atom("pump")>;

constexpr size_t page_size = 4096;

}  // namespace

/// Events read from the store once and shared, read-only, by every sink they are offered to: the
/// bus copies no event per subscriber.
using event_page = std::shared_ptr<const std::vector<event_record>>;

/// One subscriber's bounded queue and delivery thread (see the header comment).
///
/// The queue holds slices of shared pages, so offering a page costs one lock and no copy, and the
/// delivery thread takes the lock once per slice rather than once per event. `queued_` counts the
/// events not yet delivered (including the slice being delivered), which is what `capacity`
/// bounds.
class event_sink {
 public:
  event_sink(uint64_t since, size_t capacity, event_filter filter, manager::event_fn on_event,
             manager::cutoff_fn on_cutoff)
      : cursor(since),
        capacity_(capacity),
        filter_(std::move(filter)),
        on_event_(std::move(on_event)),
        on_cutoff_(std::move(on_cutoff)),
        last_delivered_(since) {
    thread_ = std::thread([this] { run(); });
  }

  ~event_sink() { close(); }

  /// Bus thread only: the last seq offered to this sink.
  uint64_t cursor;

  /// Bus thread: queues the events of `page` in [begin, end) that match the filter, in order.
  /// False when they do not all fit: those that fit are queued, the rest are not, and `cursor`
  /// stays at the last one queued.
  bool offer(const event_page& page, size_t begin, size_t end) {
    if (begin >= end) return true;
    slice s{page, begin, end};
    if (!filter_.type.empty() || !filter_.server_id.empty()) {
      // A filtering subscriber gets copies of the few events it wants: sharing the page would let
      // one wanted event keep thousands of unwanted ones in memory for as long as it is queued.
      std::vector<event_record> picked;
      for (size_t i = begin; i < end; ++i)
        if (matches((*page)[i])) picked.push_back((*page)[i]);
      s = slice{std::make_shared<const std::vector<event_record>>(std::move(picked)), 0, 0};
      s.end = s.page->size();
    }
    uint64_t last_seq = (*page)[end - 1].seq;
    std::lock_guard<std::mutex> guard{mtx_};
    size_t room = capacity_ > queued_ ? capacity_ - queued_ : 0;
    size_t count = s.end - s.begin;
    bool fits = count <= room;
    if (!fits) {
      // Keep the prefix that fits so the subscriber is told exactly where its stream stopped.
      s.end = s.begin + room;
      count = room;
      last_seq = room == 0 ? cursor : (*s.page)[s.end - 1].seq;
    }
    if (count > 0) {
      queued_ += count;
      queue_.push_back(std::move(s));
      if (waiting_) cv_.notify_one();
    }
    cursor = last_seq;
    return fits;
  }

  size_t capacity() const { return capacity_; }

  size_t room() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return capacity_ > queued_ ? capacity_ - queued_ : 0;
  }

  /// Stops accepting events; the delivery thread drains what is queued, then reports the cutoff.
  void cut_off(std::string why) {
    std::lock_guard<std::mutex> guard{mtx_};
    cut_ = true;
    why_ = std::move(why);
    cv_.notify_one();
  }

  /// True once the subscriber stopped (callback returned false) or was cut off.
  bool finished() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return stopped_ || cut_;
  }

  /// Ends delivery without a cutoff report and joins the thread. Idempotent.
  void close() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      closed_ = true;
      cv_.notify_one();
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 private:
  /// Events [begin, end) of `page`.
  struct slice {
    event_page page;
    size_t begin;
    size_t end;
  };

  bool matches(const event_record& e) const {
    return (filter_.type.empty() || filter_.type == e.type) &&
           (filter_.server_id.empty() || filter_.server_id == e.server_id);
  }

  /// Delivery thread: calls the callback for each event of `s` until it returns false or the sink
  /// is closed. Returns false when delivery must end.
  bool deliver(const slice& s) {
    for (size_t i = s.begin; i < s.end; ++i) {
      const auto& e = (*s.page)[i];
      bool more = on_event_(e);
      last_delivered_ = e.seq;
      if (!more || closed_.load(std::memory_order_relaxed)) return false;
    }
    return true;
  }

  void run() {
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      waiting_ = true;
      cv_.wait(lock, [this] { return closed_ || cut_ || !queue_.empty(); });
      waiting_ = false;
      if (closed_) return;
      if (queue_.empty() && cut_) {
        auto last = last_delivered_;
        auto why = why_;
        lock.unlock();
        if (on_cutoff_) on_cutoff_(last, why);
        return;
      }
      auto s = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      bool more = deliver(s);
      lock.lock();
      queued_ -= s.end - s.begin;
      if (closed_) return;
      if (!more) {
        stopped_ = true;
        return;
      }
    }
  }

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<slice> queue_;
  size_t queued_ = 0;
  size_t capacity_;
  event_filter filter_;
  manager::event_fn on_event_;
  manager::cutoff_fn on_cutoff_;
  uint64_t last_delivered_;  // delivery thread only
  bool waiting_ = false;     // the delivery thread sleeps on cv_ and needs a notify
  bool cut_ = false;
  // Atomic so that a closing subscriber stops delivery between two events, not only between
  // slices; written under mtx_ so the delivery thread cannot miss the wake-up.
  std::atomic<bool> closed_{false};
  bool stopped_ = false;
  std::string why_;
  std::thread thread_;
};

}  // namespace certfleet

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<certfleet::event_sink>)

namespace certfleet {
namespace {

/// Events [begin, end) of a shared page, all with seqs in order and without gaps.
struct event_slice {
  event_page page;
  size_t begin = 0;
  size_t end = 0;

  uint64_t first_seq() const { return (*page)[begin].seq; }
  uint64_t last_seq() const { return (*page)[end - 1].seq; }
  size_t size() const { return end - begin; }
  /// Drops the events with a seq at or below `seq`.
  void skip_to(uint64_t seq) {
    if (begin < end && first_seq() <= seq)
      begin = std::min(end, begin + static_cast<size_t>(seq - first_seq() + 1));
  }
};

struct bus_state {
  context_ptr ctx;
  uint64_t head = 0;   // last seq published (offered to every live subscriber)
  uint64_t known = 0;  // highest seq announced by any publisher
  // Batches announced with their events and not yet published (not durable yet, or waiting for a
  // gap before them to close), keyed by their first seq.
  std::map<uint64_t, event_slice> pending;
  // The most recent published events, contiguous and ending at `head`, at most `window_capacity`
  // of them: a subscriber starting inside the window replays from memory, not from the store.
  std::deque<event_slice> recent;
  size_t recent_events = 0;
  size_t window_capacity = default_event_window;
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::shared_ptr<event_sink>> live;
  std::unordered_map<uint64_t, std::shared_ptr<event_sink>> catching_up;
  bool pump_scheduled = false;
  static inline const char* name = "certfleet.event_bus";
};

using bus_actor = caf::stateful_actor<bus_state>;

void schedule_pump(bus_actor* self, std::chrono::milliseconds delay) {
  if (self->state.pump_scheduled) return;
  self->state.pump_scheduled = true;
  self->delayed_send(self, delay, pump_atom::value);
}

/// The index of the first event of `page` with a seq above `seq`.
size_t first_after(const std::vector<event_record>& page, uint64_t seq) {
  return static_cast<size_t>(
      std::partition_point(page.begin(), page.end(),
                           [seq](const event_record& e) { return e.seq <= seq; }) -
      page.begin());
}

/// Seq of the first event the window holds; `head + 1` when it is empty.
uint64_t window_first(const bus_state& st) {
  return st.recent.empty() ? st.head + 1 : st.recent.front().first_seq();
}

/// Offers the window's events after `sink->cursor` to a catching-up sink, as many as it has room
/// for. False when the sink's cursor lies before the window (it must read the store).
bool offer_from_window(bus_state& st, event_sink& sink) {
  if (st.recent.empty() || sink.cursor + 1 < window_first(st)) return false;
  size_t room = sink.room();
  for (const auto& s : st.recent) {
    if (room == 0 || sink.cursor >= st.head) break;
    if (s.last_seq() <= sink.cursor) continue;
    event_slice part = s;
    part.skip_to(sink.cursor);
    part.end = std::min(part.end, part.begin + room);
    room -= part.size();
    if (!sink.offer(part.page, part.begin, part.end)) break;
  }
  return true;
}

/// Moves subscribers that are replaying history forward by as much as their queues hold.
void pump(bus_actor* self) {
  auto& st = self->state;
  // A subscriber whose queue had room for a whole page is reading as fast as we can fill it:
  // pump again at once rather than capping its replay at one page per timer tick.
  bool keeping_up = false;
  for (auto it = st.catching_up.begin(); it != st.catching_up.end();) {
    auto& sink = it->second;
    if (sink->finished()) {
      it = st.catching_up.erase(it);
      continue;
    }
    auto room = std::min(sink->room(), page_size);
    if (room > 0 && sink->cursor < st.head && !offer_from_window(st, *sink)) {
      auto read = st.ctx->store->read_events(sink->cursor, room);
      if (read && !read->empty()) {
        auto n = first_after(*read, st.head);
        auto page = std::make_shared<const std::vector<event_record>>(std::move(*read));
        sink->offer(page, 0, n);
        keeping_up = keeping_up || room == page_size;
        // Nothing at or below the head is left after the cursor (trimmed): the sink is current.
        if (n == 0) sink->cursor = st.head;
      } else if (read) {
        // Seqs below the oldest kept event were trimmed by retention: skip the gap.
        sink->cursor = st.head;
      }
    } else if (room > 0) {
      keeping_up = true;
    }
    if (sink->cursor >= st.head) {
      st.live.emplace(it->first, std::move(sink));
      it = st.catching_up.erase(it);
    } else {
      ++it;
    }
  }
  if (!st.catching_up.empty()) schedule_pump(self, std::chrono::milliseconds{keeping_up ? 0 : 5});
}

/// Offers `s` (the events right after the head) to every live subscriber, cutting off one that
/// cannot take it, and appends it to the window.
void publish(bus_state& st, const event_slice& s) {
  for (auto it = st.live.begin(); it != st.live.end();) {
    auto& sink = it->second;
    if (sink->finished()) {
      it = st.live.erase(it);
    } else if (!sink->offer(s.page,
                            std::min(s.end, std::max(s.begin, first_after(*s.page, sink->cursor))),
                            s.end)) {
      sink->cut_off("fell behind: " + std::to_string(sink->capacity()) +
                    " events queued and not read");
      it = st.live.erase(it);
    } else {
      ++it;
    }
  }
  st.head = s.last_seq();
  st.recent.push_back(s);
  st.recent_events += s.size();
  while (st.recent_events > st.window_capacity && st.recent.size() > 1) {
    st.recent_events -= st.recent.front().size();
    st.recent.pop_front();
  }
}

/// Publishes every event up to `min(known, durable)`: from pending batches where they cover the
/// next seqs, from the store where a publisher announced a seq without its events.
void publish_durable(bus_state& st) {
  // Only events already fsynced are published: one a power cut could still take away would have
  // its seq reused after restart, and a subscriber resuming after it would miss the reused one.
  // Connectivity events are fsynced within `state_store::wal_sync_delay`; the store's listener
  // announces the new durable seq then (actors/manager.cpp).
  auto target = std::min(st.known, st.ctx->store->durable_event_seq());
  while (st.head < target) {
    while (!st.pending.empty() && st.pending.begin()->second.last_seq() <= st.head)
      st.pending.erase(st.pending.begin());
    if (!st.pending.empty() && st.pending.begin()->first <= st.head + 1) {
      auto s = st.pending.begin()->second;
      st.pending.erase(st.pending.begin());
      s.skip_to(st.head);
      event_slice now = s;
      if (now.last_seq() > target) now.end = now.begin + static_cast<size_t>(target - st.head);
      publish(st, now);
      if (now.end < s.end) {
        s.begin = now.end;
        st.pending.emplace(s.first_seq(), s);
      }
      continue;
    }
    // A gap no batch covers: the events were announced by seq alone.
    uint64_t gap_end = target;
    if (!st.pending.empty()) gap_end = std::min(gap_end, st.pending.begin()->first - 1);
    if (st.live.empty()) {
      // No one to hand them to: a subscriber that comes later replays from the store.
      st.recent.clear();
      st.recent_events = 0;
      st.head = gap_end;
      continue;
    }
    // Seqs are gap-free: read exactly the missing ones, not a page of later events to throw away.
    auto want = static_cast<size_t>(std::min<uint64_t>(page_size, gap_end - st.head));
    auto read = st.ctx->store->read_events(st.head, want);
    if (!read || read->empty()) break;
    read->resize(first_after(*read, gap_end));
    if (read->empty()) break;
    event_slice s{std::make_shared<const std::vector<event_record>>(std::move(*read)), 0, 0};
    s.end = s.page->size();
    publish(st, s);
  }
}

/// Publishes the number of subscribers for `status` (they come and go in several handlers).
void count_subscribers(bus_state& st) {
  st.ctx->counters.subscribers = st.live.size() + st.catching_up.size();
}

caf::behavior event_bus(bus_actor* self, context_ptr ctx) {
  self->state.ctx = ctx;
  self->state.head = ctx->store->last_event_seq();
  self->state.known = self->state.head;
  return {
      [=](published_atom, uint64_t last) {
        auto& st = self->state;
        st.known = std::max(st.known, last);
        publish_durable(st);
        count_subscribers(st);
      },
      [=](published_atom, std::vector<event_record>& events) {
        auto& st = self->state;
        if (events.empty() || events.back().seq <= st.head) return;
        auto last = events.back().seq;
        event_slice s{nullptr, 0, events.size()};
        s.page = std::make_shared<const std::vector<event_record>>(std::move(events));
        st.pending.emplace(s.first_seq(), std::move(s));
        st.known = std::max(st.known, last);
        publish_durable(st);
        count_subscribers(st);
      },
      [=](subscribe_atom, std::shared_ptr<event_sink> sink) -> uint64_t {
        auto& st = self->state;
        auto id = st.next_id++;
        if (sink->cursor >= st.head) {
          st.live.emplace(id, std::move(sink));
        } else {
          st.catching_up.emplace(id, std::move(sink));
          schedule_pump(self, std::chrono::milliseconds{0});
        }
        count_subscribers(st);
        return id;
      },
      [=](unsubscribe_atom, uint64_t id) {
        self->state.live.erase(id);
        self->state.catching_up.erase(id);
        count_subscribers(self->state);
      },
      [=](pump_atom) {
        self->state.pump_scheduled = false;
        pump(self);
        count_subscribers(self->state);
      },
      [=](stop_atom) {
        self->state.live.clear();
        self->state.catching_up.clear();
        count_subscribers(self->state);
        self->quit();
      },
  };
}

class bus_subscription final : public event_subscription {
 public:
  bus_subscription(caf::actor bus, uint64_t id, std::shared_ptr<event_sink> sink)
      : bus_(std::move(bus)), id_(id), sink_(std::move(sink)) {}
  ~bus_subscription() override {
    caf::anon_send(bus_, unsubscribe_atom::value, id_);
    sink_->close();
  }

 private:
  caf::actor bus_;
  uint64_t id_;
  std::shared_ptr<event_sink> sink_;
};

}  // namespace

caf::actor spawn_event_bus(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(event_bus, std::move(ctx));
}

caf::expected<std::unique_ptr<event_subscription>> subscribe_events(
    caf::actor_system& sys, const caf::actor& bus, uint64_t since, event_filter filter,
    manager::event_fn on_event, manager::cutoff_fn on_cutoff, size_t queue_capacity) {
  auto sink = std::make_shared<event_sink>(since, queue_capacity, std::move(filter),
                                           std::move(on_event), std::move(on_cutoff));
  caf::scoped_actor self{sys};
  caf::expected<std::unique_ptr<event_subscription>> result{
      make_error(ec::timeout, "the event bus did not answer the subscription")};
  self->request(bus, std::chrono::seconds{10}, subscribe_atom::value, sink)
      .receive(
          [&](uint64_t id) {
            result = std::unique_ptr<event_subscription>{new bus_subscription(bus, id, sink)};
          },
          [&](caf::error& err) {
            result = make_error(ec::timeout, "subscribing to events failed: " + sys.render(err));
          });
  return result;
}

}  // namespace certfleet
