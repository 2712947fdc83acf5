#pragma once
// The live side of a batch's event stream, independent of HTTP and of Kafka: which batches are
// being watched, each watched batch's events in seq order, and one cursor per subscriber.
//
// Events reach the hub three ways: from its EventSource (broadcaster/event_source.h: SQLite, or
// a producer's JSON page over HTTP) when a batch gets its first subscriber (its whole history: a
// batch has at most total + 1 events), from Kafka through on_event(), and from a periodic sweep
// that re-reads the source for every watched batch not yet completed (so an event whose Kafka
// message was lost still arrives, one sweep interval late).
//
// Ordering contract: a subscriber receives each event of its batch after its starting seq exactly
// once, in seq order, and never an event before every lower seq of its batch. Kafka may deliver a
// batch's events out of order, twice, or not at all; an early arrival is held back and triggers a
// read of the source after the last event held (the source commits a batch's seqs in order, so
// that read is gap-free); the held arrival follows once the gap is filled.
//
// One read at a time per batch: the source is read without the batch's lock held, by one thread;
// a subscriber arriving while the batch's history is being read waits for that read instead of
// making its own (a reconnect herd of thousands of clients costs one read per batch), and a gap
// or sweep while a read is in flight leaves the work to it.
//
// Threading: every method is thread-safe. on_event() is meant for the Kafka reader thread,
// subscribe() and Subscription::next() for request threads, the sweep runs on a thread of the
// hub. Each watched batch has its own mutex and condition variable, never held while the source is
// read. A Subscription is used by one thread at a time. Subscriptions may outlive the hub (they then
// report stopped()).
//
// Errors: subscribe() and read_page() throw what the source throws (DbError, SourceUnavailable);
// subscribers waiting for a failed history read get SourceUnavailable. Failures inside on_event()
// and the sweep are logged; the next sweep reads what was missed.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broadcaster/event_source.h"
#include "common/model.h"

namespace feedpipe {

namespace hub_detail {
struct Core;
struct Channel;
}  // namespace hub_detail

struct EventHubSettings {
  EventHubSettings() = default;
  EventHubSettings(std::string db, std::chrono::milliseconds sweep, std::shared_ptr<EventSource> src = nullptr)
      : db_path(std::move(db)), sweep_interval(sweep), source(std::move(src)) {}

  std::string db_path;                             // the SQLite file the events are written to
  std::chrono::milliseconds sweep_interval{1000};  // how often watched batches are re-read
  std::shared_ptr<EventSource> source;             // set: read from it instead of db_path
};

// One subscriber's view of a batch: a cursor into the batch's events.
class Subscription {
 public:
  ~Subscription();  // unsubscribes; the batch's cache goes with its last subscriber
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // The events after the cursor, in seq order, advancing the cursor past them. Blocks until
  // there is at least one, the timeout passes (returns none: time for a heartbeat), or the hub
  // stops. Returns none at once when finished().
  std::vector<EventMessage> next(std::chrono::milliseconds timeout);

  // True once batch.completed has been handed out (or the cursor started past it).
  bool finished() const;
  // True once the hub is stopping: the caller should end its stream.
  bool stopped() const;
  // The seq of the last event handed out (or the starting seq).
  int64_t cursor() const { return cursor_; }
  const std::string& batch_id() const { return batch_id_; }

 private:
  friend class EventHub;
  Subscription(std::shared_ptr<hub_detail::Core> core, std::string batch_id,
               std::shared_ptr<hub_detail::Channel> channel, int64_t after_seq);

  std::shared_ptr<hub_detail::Core> core_;
  std::string batch_id_;
  std::shared_ptr<hub_detail::Channel> channel_;
  int64_t cursor_;
};

class EventHub {
 public:
  // Told the id of a watched batch whose events grew (from on_event(), sweep() or subscribe()'s
  // first read), so that an event loop can pull them without blocking in Subscription::next().
  // Called on the thread that grew the batch, with no hub lock held; it must be quick.
  using GrowthListener = std::function<void(const std::string& batch_id)>;

  explicit EventHub(EventHubSettings settings);
  ~EventHub();  // stop()
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Starts the sweep thread. Without it the hub still works, minus the recovery of lost events.
  void start();
  // Stops the sweep and wakes every subscriber; their next() returns at once from now on and
  // stopped() is true. Idempotent.
  void stop();

  // Watches `batch_id` from the event after `after_seq` (0: from the start). nullptr when no
  // such batch exists.
  std::shared_ptr<Subscription> subscribe(const std::string& batch_id, int64_t after_seq);

  // An event from Kafka. Ignored when nobody watches its batch or it was already held; appended
  // when it is the next seq; otherwise held back while the gap before it is read from the source
  // (on this thread, or for a remote source on the sweep thread: start() it).
  void on_event(const EventMessage& event);

  // Re-reads the source for every watched batch that is not completed yet. The sweep thread calls it
  // every sweep_interval; tests may call it directly.
  void sweep();

  // Events with seq > after_seq, at most `limit`, from the source; nullopt for an unknown batch.
  std::optional<EventPage> read_page(const std::string& batch_id, int64_t after_seq, int limit);

  // The number of batches with at least one subscriber.
  size_t watched_batches() const;
  // How many times a batch's history was read for a first subscriber (subscribers of an already
  // watched batch, or of one whose history is being read, share it).
  uint64_t history_reads() const;
  // How many reads the hub made of its source (history, gaps and sweeps; not read_page()).
  uint64_t source_reads() const;
  // Empty when the source can be read, else why not (for /readyz).
  std::string source_readiness();

  // Adds a growth listener (every event loop serving this hub has one); thread-safe. Listeners
  // run under a hub-wide mutex of their own, so they must not call back into the hub. Returns
  // the id that remove_growth_listener() takes.
  uint64_t add_growth_listener(GrowthListener listener);
  void remove_growth_listener(uint64_t id);

 private:
  EventHubSettings settings_;
  std::shared_ptr<hub_detail::Core> core_;
  // Reads the gap of each queued batch (a remote source's gaps, off the Kafka thread).
  void fill_gaps(const std::vector<std::string>& batch_ids);

  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;
  bool sweep_stop_ = false;
  std::vector<std::string> gap_queue_;  // guarded by sweep_mu_; for the sweep thread
  std::thread sweeper_;
};

}  // namespace feedpipe
