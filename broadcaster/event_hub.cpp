#include "broadcaster/event_hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>

#include "common/db.h"
#include "common/db_pool.h"
#include "common/queries.h"
#include "common/thread_name.h"

namespace feedpipe {
namespace hub_detail {

// One watched batch. Invariant: events[i].seq == i + 1 (the cache is gap-free from seq 1).
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  bool loaded = false;     // history read from SQLite; until then Kafka events are left to it
  bool completed = false;  // batch.completed is held
  std::vector<EventMessage> events;

  int64_t last() const { return static_cast<int64_t>(events.size()); }

  // Appends the events that continue the sequence; stops at the first gap. Caller holds mu.
  bool append_in_order(std::vector<EventMessage>&& more) {
    bool grew = false;
    for (auto& e : more) {
      if (e.seq <= last()) continue;
      if (e.seq != last() + 1) break;
      if (e.type == "batch.completed") completed = true;
      events.push_back(std::move(e));
      grew = true;
    }
    return grew;
  }

  // Reads every event after the last one held. Caller holds mu.
  bool catch_up(Database& db, const std::string& batch_id) {
    constexpr int kPage = 1000;
    bool grew = false;
    while (true) {
      auto page = events_after(db, batch_id, last(), kPage);
      size_t n = page.size();
      int64_t before = last();
      grew |= append_in_order(std::move(page));
      if (static_cast<int>(n) < kPage || last() == before) return grew;
    }
  }
};

struct Core {
  explicit Core(std::string path) : db_path(std::move(path)) {}

  const std::string db_path;
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> history_reads{0};
  std::mutex listener_mu;  // guards listeners and next_listener_id
  std::map<uint64_t, EventHub::GrowthListener> listeners;
  uint64_t next_listener_id = 1;

  void notify_growth(const std::string& batch_id) {
    std::lock_guard lock(listener_mu);
    for (auto& [id, listener] : listeners) listener(batch_id);
  }

  struct Watched {
    std::shared_ptr<Channel> channel;
    int subscribers = 0;
  };
  mutable std::mutex mu;  // guards channels
  std::unordered_map<std::string, Watched> channels;

  std::shared_ptr<Channel> find(const std::string& batch_id) {
    std::lock_guard lock(mu);
    auto it = channels.find(batch_id);
    return it == channels.end() ? nullptr : it->second.channel;
  }

  std::shared_ptr<Channel> join(const std::string& batch_id) {
    std::lock_guard lock(mu);
    Watched& w = channels[batch_id];
    if (!w.channel) w.channel = std::make_shared<Channel>();
    ++w.subscribers;
    return w.channel;
  }

  void leave(const std::string& batch_id) {
    std::lock_guard lock(mu);
    auto it = channels.find(batch_id);
    if (it != channels.end() && --it->second.subscribers == 0) channels.erase(it);
  }

  std::vector<std::pair<std::string, std::shared_ptr<Channel>>> snapshot() const {
    std::lock_guard lock(mu);
    std::vector<std::pair<std::string, std::shared_ptr<Channel>>> out;
    out.reserve(channels.size());
    for (const auto& [id, w] : channels) out.emplace_back(id, w.channel);
    return out;
  }
};

}  // namespace hub_detail

using hub_detail::Channel;

Subscription::Subscription(std::shared_ptr<hub_detail::Core> core, std::string batch_id,
                           std::shared_ptr<Channel> channel, int64_t after_seq)
    : core_(std::move(core)),
      batch_id_(std::move(batch_id)),
      channel_(std::move(channel)),
      cursor_(std::max<int64_t>(after_seq, 0)) {}

Subscription::~Subscription() { core_->leave(batch_id_); }

std::vector<EventMessage> Subscription::next(std::chrono::milliseconds timeout) {
  Channel& ch = *channel_;
  std::unique_lock lock(ch.mu);
  if (ch.completed && cursor_ >= ch.last()) return {};
  ch.cv.wait_for(lock, timeout, [&] { return ch.last() > cursor_ || core_->stopped.load(); });
  std::vector<EventMessage> out;
  if (ch.last() > cursor_) {
    out.assign(ch.events.begin() + cursor_, ch.events.end());
    cursor_ = ch.last();
  }
  return out;
}

bool Subscription::finished() const {
  std::lock_guard lock(channel_->mu);
  return channel_->completed && cursor_ >= channel_->last();
}

bool Subscription::stopped() const { return core_->stopped.load(); }

EventHub::EventHub(EventHubSettings settings)
    : settings_(std::move(settings)), core_(std::make_shared<hub_detail::Core>(settings_.db_path)) {}

EventHub::~EventHub() { stop(); }

void EventHub::start() {
  std::lock_guard lock(sweep_mu_);
  if (sweeper_.joinable() || sweep_stop_) return;
  sweeper_ = named_thread("fp-hub-sweep", [this] {
    std::unique_lock lock(sweep_mu_);
    while (!sweep_cv_.wait_for(lock, settings_.sweep_interval, [this] { return sweep_stop_; })) {
      lock.unlock();
      sweep();
      lock.lock();
    }
  });
}

void EventHub::stop() {
  {
    std::lock_guard lock(sweep_mu_);
    sweep_stop_ = true;
  }
  sweep_cv_.notify_all();
  if (sweeper_.joinable() && sweeper_.get_id() != std::this_thread::get_id()) sweeper_.join();
  core_->stopped = true;
  // Taking each channel's mutex before notifying means no waiter can miss the flag.
  for (auto& [id, ch] : core_->snapshot()) {
    std::lock_guard lock(ch->mu);
    ch->cv.notify_all();
  }
}

std::shared_ptr<Subscription> EventHub::subscribe(const std::string& batch_id, int64_t after_seq) {
  {
    Database& db = thread_db(core_->db_path);
    if (!batch_progress(db, batch_id)) return nullptr;
  }
  std::shared_ptr<Subscription> sub(
      new Subscription(core_, batch_id, core_->join(batch_id), after_seq));
  Channel& ch = *sub->channel_;
  std::lock_guard lock(ch.mu);
  if (!ch.loaded) {
    Database& db = thread_db(core_->db_path);
    ++core_->history_reads;
    ch.catch_up(db, batch_id);  // throws: the subscription unsubscribes as it goes
    ch.loaded = true;
  }
  return sub;
}

void EventHub::on_event(const EventMessage& event) {
  auto ch = core_->find(event.batch_id);
  if (!ch) return;  // nobody watches this batch
  std::unique_lock lock(ch->mu);
  // Until the history is loaded, it will include this event (events are committed before they
  // are published).
  if (!ch->loaded || event.seq <= ch->last()) return;
  bool grew = false;
  if (event.seq == ch->last() + 1) {
    grew = ch->append_in_order({event});
  } else {
    // An earlier seq has not arrived (yet): SQLite has every seq up to this one.
    spdlog::debug("batch {}: event {} arrived after {}, reading the gap from SQLite", event.batch_id,
                  event.seq, ch->last());
    try {
      Database& db = thread_db(core_->db_path);
      grew = ch->catch_up(db, event.batch_id);
    } catch (const std::exception& e) {
      spdlog::warn("batch {}: cannot read events after {}: {} (the sweep will retry)",
                   event.batch_id, ch->last(), e.what());
    }
  }
  if (grew) {
    ch->cv.notify_all();
    lock.unlock();
    core_->notify_growth(event.batch_id);
  }
}

void EventHub::sweep() {
  for (auto& [batch_id, ch] : core_->snapshot()) {
    if (core_->stopped) return;
    bool grew = false;
    {
      std::lock_guard lock(ch->mu);
      if (!ch->loaded || ch->completed) continue;
      try {
        Database& db = thread_db(core_->db_path);
        grew = ch->catch_up(db, batch_id);
        if (grew) ch->cv.notify_all();
      } catch (const std::exception& e) {
        spdlog::warn("batch {}: sweep cannot read events: {}", batch_id, e.what());
      }
    }
    if (grew) core_->notify_growth(batch_id);
  }
}

uint64_t EventHub::add_growth_listener(GrowthListener listener) {
  std::lock_guard lock(core_->listener_mu);
  const uint64_t id = core_->next_listener_id++;
  core_->listeners.emplace(id, std::move(listener));
  return id;
}

void EventHub::remove_growth_listener(uint64_t id) {
  std::lock_guard lock(core_->listener_mu);
  core_->listeners.erase(id);
}

std::optional<EventPage> EventHub::read_page(const std::string& batch_id, int64_t after_seq,
                                             int limit) {
  after_seq = std::max<int64_t>(after_seq, 0);
  std::optional<BatchProgress> progress;
  EventPage page;
  Database& db = thread_db(core_->db_path);
  db.read([&] {
    progress = batch_progress(db, batch_id);
    if (progress) page.events = events_after(db, batch_id, after_seq, limit);
  });
  if (!progress) return std::nullopt;
  page.next_after = page.events.empty() ? after_seq : page.events.back().seq;
  page.done = progress->status == "completed" && progress->last_seq <= page.next_after;
  return page;
}

uint64_t EventHub::history_reads() const { return core_->history_reads.load(); }

size_t EventHub::watched_batches() const {
  std::lock_guard lock(core_->mu);
  return core_->channels.size();
}

}  // namespace feedpipe
