#include "broadcaster/stream_server_impl.h"

// The streams on the loop: admission, a batch's streams and streams of many batches, the groups
// (one per watched batch: its log and its streams), history reads off the loop, and the fan-out
// of each batch's new events to its own streams only.

namespace feedpipe {

using namespace stream_front;

// The access checks of a stream request, in order: open rate, signed token, total streams,
// streams of this client address. False when `c` was answered with the refusal.
// `tokens`: the request's token= values, one per batch (in order) when tokens are on.
bool StreamServer::Impl::admit_stream(Client* c, const std::vector<std::string>& batch_ids, const std::vector<std::string>& tokens,
                  const std::string& address) {
  if (stream_limiter.enabled()) {
    auto decision = stream_limiter.acquire(address);
    if (!decision.allowed) {
      respond(c, error_response(429, "rate_limited",
                                "more than " + std::to_string(settings.stream_rate_per_minute) +
                                    " stream opens per minute from this address; retry in " +
                                    std::to_string(decision.retry_after_s) + " s",
                                "Retry-After: " + std::to_string(decision.retry_after_s) + "\r\n" + c->cors));
      return false;
    }
  }
  if (!settings.stream_token_secret.empty()) {
    const bool many = batch_ids.size() > 1;
    if (tokens.size() != batch_ids.size()) {
      respond(c, error_response(403, "stream_token_required",
                                many ? "this stream needs one ?token= per batch=, in the same order (the stream_token "
                                       "answered with each batch): " + std::to_string(batch_ids.size()) +
                                           " batches, " + std::to_string(tokens.size()) + " tokens"
                                     : "this stream needs ?token= (the stream_token answered with the batch)",
                                c->cors));
      return false;
    }
    for (size_t i = 0; i < batch_ids.size(); ++i) {
      if (stream_token_valid(settings.stream_token_secret, batch_ids[i], tokens[i])) continue;
      respond(c, error_response(403, "invalid_stream_token",
                                many ? "the stream token of batch " + batch_ids[i] + " (token " + std::to_string(i + 1) +
                                           ") does not match it"
                                     : "the stream token does not match this batch",
                                c->cors));
      return false;
    }
  }
  if (stream_count.load() >= settings.max_streams) {
    respond(c, error_response(503, "too_many_streams", "this server holds its maximum of open streams; retry later",
                              "Retry-After: 5\r\n" + c->cors));
    return false;
  }
  if (settings.max_streams_per_ip > 0) {
    auto it = streams_by_address.find(address);
    if (it != streams_by_address.end() && it->second >= settings.max_streams_per_ip) {
      respond(c, error_response(429, "too_many_streams_from_address",
                                "this address holds its maximum of " + std::to_string(settings.max_streams_per_ip) +
                                    " open streams; close some or retry later",
                                "Retry-After: 5\r\n" + c->cors));
      return false;
    }
  }
  return true;
}

void StreamServer::Impl::open_stream(Client* c, const http1::RequestHead& head, const std::string& batch_id) {
  const std::string* forwarded = head.header("X-Forwarded-For");
  std::string address = settings.trusted_proxies.client_address(peer_ip(c->fd), forwarded ? *forwarded : "");
  std::vector<std::string> tokens;
  if (auto token = http1::query_param(head.query, "token")) tokens.push_back(std::move(*token));
  if (!admit_stream(c, {batch_id}, tokens, address)) return;
  int64_t cursor = 0;
  std::string text;
  if (const std::string* h = head.header("Last-Event-ID")) text = *h;
  if (text.empty()) text = http1::query_param(head.query, "last_event_id").value_or("");
  if (!text.empty()) {
    auto seq = parse_seq(text);
    if (!seq)
      return respond(c, error_response(400, "invalid_last_event_id",
                                       "Last-Event-ID must be a non-negative integer (an event id)", c->cors));
    cursor = *seq;
  }
  Group* g = nullptr;
  auto it = groups.find(batch_id);
  if (it != groups.end()) {
    g = it->second.get();
  } else if (settings.async_first_read) {
    auto group = std::make_unique<Group>();
    group->batch_id = batch_id;
    g = group.get();
    groups.emplace(batch_id, std::move(group));
    start_load(*g);
  } else {
    std::shared_ptr<Subscription> sub;
    try {
      sub = hub.subscribe(batch_id, 0);
    } catch (const SourceUnavailable& e) {  // the API is down: the client retries (with Last-Event-ID)
      spdlog::debug("GET /v1/batches/{}/events: {}", batch_id, e.what());
      return respond(c, error_response(503, "events_unavailable",
                                       "the batch's events cannot be read right now; retry shortly",
                                       "Retry-After: 2\r\n" + c->cors));
    } catch (const std::exception& e) {
      spdlog::error("GET /v1/batches/{}/events: {}", batch_id, e.what());
      return respond(c, error_response(500, "internal", "cannot read the batch's events; try again", c->cors));
    }
    if (!sub) return respond(c, error_response(404, "batch_not_found", "no batch with id " + batch_id, c->cors));
    auto group = std::make_unique<Group>();
    group->batch_id = batch_id;
    group->sub = std::move(sub);
    g = group.get();
    groups.emplace(batch_id, std::move(group));
    pull(*g);
  }
  if (g->loading) {  // wait for the read in flight, counted against the stream caps meanwhile
    std::string().swap(c->in);
    c->state = State::waiting;
    c->group = g;
    c->wait_cursor = cursor;
    c->address = std::move(address);
    count_stream(c->address);
    g->waiting.push_back(c);
    watch(c, client_interest(c));
    return;
  }
  join_stream(c, g, cursor, std::move(address));
}

// A stream of group `g` from the event after `cursor`: the head, `retry:`, the backlog.
void StreamServer::Impl::join_stream(Client* c, Group* g, int64_t cursor, std::string address) {
  std::string().swap(c->in);
  c->state = State::stream;
  c->group = g;
  c->group_index = g->streams.size();
  g->streams.push_back(c);
  streams_open_gauge().add(1);
  c->address = std::move(address);
  count_stream(c->address);
  if (cursor <= g->last) {
    c->sent = g->offset_after(cursor);
  } else {
    c->sent = g->log.size();
    c->skip_to = cursor;
  }
  c->floor = g->log.size();
  c->out = stream_head(c->cors);
  std::string().swap(c->cors);
  c->out += sse::format_retry(settings.retry_ms);
  c->last_write = now;
  schedule(c, now + settings.heartbeat);
  flush(c);
}

void StreamServer::Impl::count_stream(const std::string& address) {
  ++stream_count;
  ++streams_by_address[address];
}

void StreamServer::Impl::uncount_stream(const std::string& address) {
  --stream_count;
  if (auto it = streams_by_address.find(address); it != streams_by_address.end() && --it->second == 0)
    streams_by_address.erase(it);
}

void StreamServer::Impl::leave_waiting(Client* c) {
  Group* g = c->group;
  c->group = nullptr;
  uncount_stream(c->address);
  g->waiting.erase(std::find(g->waiting.begin(), g->waiting.end(), c));
  if (g->unwatched()) emptied_groups.push_back(g->batch_id);
}

// Reads the batch's history on a thread of its own (async_first_read): a slow event source
// (an API) must not stall the loop. finish_loads() takes the result.
void StreamServer::Impl::start_load(Group& g) {
  g.loading = true;
  g.load_id = next_load_id++;
  loaders.emplace(g.load_id, named_thread("fp-stream-load", [this, batch_id = g.batch_id, id = g.load_id] {
    Loaded r{batch_id, id, nullptr, 200};
    try {
      r.sub = hub.subscribe(batch_id, 0);
      if (!r.sub) r.status = 404;
    } catch (const SourceUnavailable& e) {
      spdlog::debug("GET /v1/batches/{}/events: {}", batch_id, e.what());
      r.status = 503;
    } catch (const std::exception& e) {
      spdlog::error("GET /v1/batches/{}/events: {}", batch_id, e.what());
      r.status = 500;
    }
    {
      std::lock_guard lock(loads_mu);
      loads_done.push_back(std::move(r));
    }
    wakeup->poke();
  }));
}

// The history reads that ended: their waiting streams start, or get the refusal.
void StreamServer::Impl::finish_loads() {
  std::vector<Loaded> done;
  {
    std::lock_guard lock(loads_mu);
    done.swap(loads_done);
  }
  for (Loaded& r : done) {
    if (auto t = loaders.find(r.load_id); t != loaders.end()) {
      t->second.join();
      loaders.erase(t);
    }
    auto it = groups.find(r.batch_id);
    if (it == groups.end() || !it->second->loading || it->second->load_id != r.load_id) continue;  // all left
    Group* g = it->second.get();
    std::vector<Client*> waiting, still_waiting;
    waiting.swap(g->waiting);
    if (r.status == 200) {
      g->sub = std::move(r.sub);
      g->loading = false;
      pull(*g);
    }
    for (Client* c : waiting) {
      if (c->multi) {  // a stream of many batches starts once all their reads are done
        if (r.status == 200 && --c->multi->loads_pending > 0) {
          still_waiting.push_back(c);  // keeps this group alive while it waits for the others
          continue;
        }
        leave_multi_waiting(c);
        if (r.status == 200)
          join_multi(c);
        else
          respond(c, load_refusal(r.status, r.batch_id, c->cors));
        continue;
      }
      c->group = nullptr;
      uncount_stream(c->address);
      if (r.status == 200)
        join_stream(c, g, c->wait_cursor, c->address);
      else
        respond(c, load_refusal(r.status, r.batch_id, c->cors));
    }
    g->waiting.insert(g->waiting.end(), still_waiting.begin(), still_waiting.end());
    if (g->unwatched()) groups.erase(it);  // refused, or all gone already
  }
}

// The answer to a stream whose batch's history read failed (finish_loads()).
std::string StreamServer::Impl::load_refusal(int status, const std::string& batch_id, const std::string& cors) {
  if (status == 404) return error_response(404, "batch_not_found", "no batch with id " + batch_id, cors);
  if (status == 503)
    return error_response(503, "events_unavailable", "the batch's events cannot be read right now; retry shortly",
                          "Retry-After: 2\r\n" + cors);
  return error_response(500, "internal", "cannot read the batch's events; try again", cors);
}

// The same checks and answers as a batch's stream, for every batch named, plus the batch list's
// own refusals (broadcaster/multi_batch_stream.h). Each batch joins its group (made and read as
// for a batch's stream); the stream starts once every group's history is loaded.
void StreamServer::Impl::open_multi_stream(Client* c, const http1::RequestHead& head) {
  BatchList list = parse_batch_list(head.query, settings.max_stream_batches, "--max-stream-batches");
  if (list.refusal)
    return respond(c, error_response(list.refusal->status, list.refusal->code, list.refusal->message, c->cors));
  const std::string* forwarded = head.header("X-Forwarded-For");
  std::string address = settings.trusted_proxies.client_address(peer_ip(c->fd), forwarded ? *forwarded : "");
  if (!admit_stream(c, list.batch_ids, http1::query_params(head.query, "token"), address)) return;
  std::string text;
  if (const std::string* h = head.header("Last-Event-ID")) text = *h;
  if (text.empty()) text = http1::query_param(head.query, "last_event_id").value_or("");
  auto cursors = parse_stream_id(text, list.batch_ids.size());
  if (!cursors)
    return respond(c, error_response(400, "invalid_last_event_id",
                                     "Last-Event-ID must be an event id of this stream (as sent in its id: lines)",
                                     c->cors));
  auto stream = std::make_unique<MultiBatchStream>(std::move(*cursors));
  for (size_t i = 0; i < list.batch_ids.size(); ++i) {
    const std::string& batch_id = list.batch_ids[i];
    Group* g = nullptr;
    if (auto it = groups.find(batch_id); it != groups.end()) {
      g = it->second.get();
    } else if (settings.async_first_read) {
      auto group = std::make_unique<Group>();
      group->batch_id = batch_id;
      g = group.get();
      groups.emplace(batch_id, std::move(group));
      emptied_groups.push_back(batch_id);  // dropped at the turn's end unless a stream holds it
      start_load(*g);
    } else {
      std::shared_ptr<Subscription> sub;
      int status = 200;
      try {
        sub = hub.subscribe(batch_id, 0);
        if (!sub) status = 404;
      } catch (const SourceUnavailable& e) {
        spdlog::debug("GET /v1/events: batch {}: {}", batch_id, e.what());
        status = 503;
      } catch (const std::exception& e) {
        spdlog::error("GET /v1/events: batch {}: {}", batch_id, e.what());
        status = 500;
      }
      // The groups made for this request so far go at the turn's end (nobody else holds them).
      if (status != 200) return respond(c, load_refusal(status, batch_id, c->cors));
      auto group = std::make_unique<Group>();
      group->batch_id = batch_id;
      group->sub = std::move(sub);
      g = group.get();
      groups.emplace(batch_id, std::move(group));
      emptied_groups.push_back(batch_id);
      pull(*g);
    }
    if (g->loading) ++stream->loads_pending;
    stream->members()[i].log = g;
  }
  c->multi = std::move(stream);
  c->address = std::move(address);
  if (c->multi->loads_pending == 0) return join_multi(c);
  // Wait for the reads in flight, counted against the stream caps meanwhile; every group of the
  // stream lists it as waiting, so that none goes while it waits.
  std::string().swap(c->in);
  c->state = State::waiting;
  count_stream(c->address);
  for (auto& m : c->multi->members()) static_cast<Group*>(m.log)->waiting.push_back(c);
  watch(c, client_interest(c));
}

// A stream of many batches whose groups are all loaded: the head, `retry:`, the backlog.
void StreamServer::Impl::join_multi(Client* c) {
  std::string().swap(c->in);
  c->state = State::stream;
  auto& members = c->multi->members();
  for (size_t i = 0; i < members.size(); ++i) {
    Group* g = static_cast<Group*>(members[i].log);
    members[i].slot = g->multi.size();
    g->multi.emplace_back(c, i);
  }
  c->multi->start();
  streams_open_gauge().add(1);
  count_stream(c->address);
  c->out = stream_head(c->cors);
  std::string().swap(c->cors);
  c->out += sse::format_retry(settings.retry_ms);
  c->last_write = now;
  schedule(c, now + settings.heartbeat);
  flush(c);
}

void StreamServer::Impl::leave_multi(Client* c) {
  auto& members = c->multi->members();
  for (auto& m : members) {
    Group* g = static_cast<Group*>(m.log);
    const auto moved = g->multi.back();
    g->multi[m.slot] = moved;
    moved.first->multi->members()[moved.second].slot = m.slot;
    g->multi.pop_back();
    if (g->unwatched()) emptied_groups.push_back(g->batch_id);
  }
  uncount_stream(c->address);
  streams_open_gauge().add(-1);
}

void StreamServer::Impl::leave_multi_waiting(Client* c) {
  for (auto& m : c->multi->members()) {
    Group* g = static_cast<Group*>(m.log);
    if (auto it = std::find(g->waiting.begin(), g->waiting.end(), c); it != g->waiting.end()) g->waiting.erase(it);
    if (g->unwatched()) emptied_groups.push_back(g->batch_id);
  }
  uncount_stream(c->address);
}

// A stream of many batches, one of whose batches grew: as push() for a batch's stream.
void StreamServer::Impl::push_multi(Client* c) {
  if (!(c->interest & EPOLLOUT)) {
    flush(c);
    if (c->closed) return;
  }
  if (c->multi->lag() + c->out.size() > settings.stream_buffer_bytes) {
    spdlog::debug("stream of {} batches dropped: the client is not reading", c->multi->members().size());
    close_client(c);
  }
}

void StreamServer::Impl::leave_group(Client* c) {
  Group* g = c->group;
  c->group = nullptr;
  uncount_stream(c->address);
  streams_open_gauge().add(-1);
  Client* moved = g->streams.back();
  g->streams[c->group_index] = moved;
  moved->group_index = c->group_index;
  g->streams.pop_back();
  if (g->unwatched()) emptied_groups.push_back(g->batch_id);
}

// Takes the batch's new events from the hub into the group's log.
bool StreamServer::Impl::pull(Group& g) {
  if (!g.sub) return false;  // its history is still being read
  std::vector<EventMessage> events = g.sub->next(std::chrono::milliseconds(0));
  g.fresh_ts.clear();
  for (const EventMessage& e : events) {
    if (!g.append(e)) continue;  // the hub hands out seq order; never expected otherwise
    if (auto ts = delivery::event_ts_ms(e.data)) g.fresh_ts.push_back(*ts);
  }
  if (g.sub->finished()) g.completed = true;
  return !events.empty();
}

// The group's log grew: send the stream its new frames, or drop it when it lags too far.
void StreamServer::Impl::push(Client* c) {
  Group& g = *c->group;
  if (c->skip_to > 0) {
    if (g.last < c->skip_to && !g.completed) {
      c->sent = g.log.size();
      return;
    }
    c->sent = std::max(c->sent, g.offset_after(c->skip_to));
    c->skip_to = 0;
  }
  if (!(c->interest & EPOLLOUT)) {  // not blocked: hand the kernel what it takes
    flush(c);
    if (c->closed) return;
  }
  // What the kernel did not take is this stream's buffer (the log is shared, so it costs no
  // copy; the bound is on how far behind the live events the client may fall).
  size_t lag = g.log.size() - std::max(c->sent, c->floor) + c->out.size();
  if (lag > settings.stream_buffer_bytes) {
    spdlog::debug("stream of batch {} dropped: the client is not reading", g.batch_id);
    close_client(c);
  }
}

// Serves the batches with new events one at a time, longest-waiting first, including those that
// grow meanwhile; after kFanOutTurn it lets the loop's other work in and comes back.
void StreamServer::Impl::fan_out_dirty() {
  wakeup->clear_signal();
  finish_loads();
  const Clock::time_point turn_ends = Clock::now() + kFanOutTurn;
  while (true) {
    if (Clock::now() >= turn_ends) {
      wakeup->poke();  // the eventfd brings the loop back for what is left
      break;
    }
    std::optional<std::string> batch_id = wakeup->next();
    if (!batch_id) break;
    auto it = groups.find(*batch_id);
    if (it == groups.end()) continue;
    Group& g = *it->second;
    if (!pull(g)) continue;
    const uint64_t delivered_before = delivered;
    // Backwards: closing a stream moves the last one into its slot (groups go in bury()).
    fan_out_visits.fetch_add(g.streams.size() + g.multi.size(), std::memory_order_relaxed);
    for (size_t i = g.streams.size(); i-- > 0;)
      if (i < g.streams.size()) push(g.streams[i]);
    // Streams of many batches watching this one write at the turn's end, once for all their
    // batches that grew in it (one send instead of one per batch).
    for (const auto& [c, member] : g.multi) {
      if (c->multi_dirty) continue;
      c->multi_dirty = true;
      dirty_multi.push_back(c);
    }
    if (delivered != delivered_before) {  // live events reached a socket: once per event
      const int64_t written_at = now_ms();
      for (int64_t ts : g.fresh_ts) delivery::observe_latency(ts, written_at);
    } else if (!g.multi.empty()) {
      multi_fresh_ts.insert(multi_fresh_ts.end(), g.fresh_ts.begin(), g.fresh_ts.end());
    }
  }
  flush_dirty_multi();
}

void StreamServer::Impl::flush_dirty_multi() {
  if (dirty_multi.empty()) return;
  const uint64_t delivered_before = delivered;
  std::vector<Client*> dirty;
  dirty.swap(dirty_multi);
  for (Client* c : dirty) {  // closed ones stay allocated until bury()
    c->multi_dirty = false;
    if (!c->closed) push_multi(c);
  }
  if (delivered != delivered_before) {
    const int64_t written_at = now_ms();
    for (int64_t ts : multi_fresh_ts) delivery::observe_latency(ts, written_at);
  }
  multi_fresh_ts.clear();
}

}  // namespace feedpipe
