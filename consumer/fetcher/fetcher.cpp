#include "consumer/fetcher/fetcher.h"

#include <curl/curl.h>
#include <strings.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "consumer/fetcher/address_policy.h"

namespace feedpipe::fetcher {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool has_crlf(const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; }

// HTTP/2 and HTTP/3 carry no reason phrase; HTTP/1 servers may omit it.
const char* standard_reason(long code) {
  switch (code) {
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 425: return "Too Early";
    case 429: return "Too Many Requests";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

// Seconds from now, from "120" or an HTTP date; nullopt when unparsable.
std::optional<long> parse_retry_after(std::string_view value) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return 999999999L;
    return std::stol(std::string(value));
  }
  std::string date(value);
  time_t when = curl_getdate(date.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  time_t now = std::time(nullptr);
  return when > now ? static_cast<long>(when - now) : 0L;
}

// "scheme://host:port" of a URL (what precedes its path), the key of the per-host limit.
std::string host_of(const std::string& url) {
  const size_t authority = url.find("://");
  if (authority == std::string::npos) return url;
  return url.substr(0, url.find_first_of("/?#", authority + 3));
}

std::once_flag curl_init_once;

}  // namespace

struct Fetcher::Impl {
  struct Job {
    FetchRequest request;
    Impl* fetcher = nullptr;
    std::string host;  // scheme://host:port of the request, for the per-host limit
    Clock::time_point started, deadline;
    int attempts = 0;
    std::string last_error;  // of the previous attempt, for logs

    // Per attempt.
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    Clock::time_point attempt_started;
    long attempt_timeout_ms = 0;
    bool timeout_clamped = false;  // the attempt's time limit is the job deadline
    std::string body;
    bool body_exceeded = false;
    std::string refused;  // "refused address ..." set by the open-socket callback
    long status = 0;      // of the latest response head seen (redirect hops included)
    bool has_location = false;  // the latest response head carries a Location
    // Whether the answer has begun: a byte of the response the request is waiting for arrived.
    // A 1xx head or a redirect that is followed means another head is awaited, so it is false
    // again until that one starts.
    bool answer_begun = false;
    std::string reason, etag, last_modified, content_type;
    std::optional<long> retry_after_s;
    char errbuf[CURL_ERROR_SIZE] = {};

    void reset_attempt() {
      body.clear();
      body_exceeded = false;
      refused.clear();
      status = 0;
      has_location = false;
      answer_begun = false;
      reason.clear();
      etag.clear();
      last_modified.clear();
      content_type.clear();
      retry_after_s.reset();
      errbuf[0] = '\0';
    }
  };
  using JobPtr = std::unique_ptr<Job>;

  FetchSettings settings;
  AddressPolicy policy;
  CURLM* multi = nullptr;
  std::deque<JobPtr> queue;                          // ready to start
  // Transfers per host are limited here, not only by libcurl's connection limit: a transfer
  // libcurl holds for a connection would take a slot of max_in_flight from other hosts' feeds
  // (and cost it a search of the host's connections at every turn).
  std::unordered_map<std::string, int> host_running;
  std::unordered_map<std::string, std::deque<JobPtr>> host_held;  // ready, but their host is at its limit
  size_t held = 0;
  std::multimap<Clock::time_point, JobPtr> waiting;  // retry at
  std::unordered_map<Job*, JobPtr> running;
  std::vector<CURL*> free_handles;
  std::vector<FetchResult> results;
  std::atomic<bool> woken{false};
  // libcurl's event interface: it names the sockets to watch (on_socket) and when to call it
  // back (on_timer); only the transfers whose sockets are ready run. curl_multi_perform would
  // instead step every transfer in flight (a poll() each) for every event, which cost more than
  // the transfers themselves with hundreds in flight.
  int epoll_fd = -1;
  int wake_fd = -1;  // an eventfd in the epoll set, for wakeup()
  // What the epoll set holds for each socket libcurl named, by socket number.
  struct Watch {
    uint32_t events = 0;  // as registered in epoll_fd; 0: not in the set
    bool ours = false;    // opened by on_open_socket and closed by on_close_socket
    bool parked = false;  // libcurl stopped watching it: an idle connection kept for reuse
  };
  std::vector<Watch> watches;
  std::optional<Clock::time_point> curl_timer;
  std::mt19937_64 rng{std::random_device{}()};

  explicit Impl(FetchSettings s)
      : settings(std::move(s)), policy(settings.allow_private_networks, settings.allow_networks) {
    settings.max_in_flight = std::max(1, settings.max_in_flight);
    settings.max_attempts = std::max(1, settings.max_attempts);
    std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl_multi_init failed");
    if (settings.max_host_connections > 0)
      curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(settings.max_host_connections));
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(settings.max_in_flight));
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd < 0 || wake_fd < 0) {
      const std::string why = std::strerror(errno);
      close_fds();
      curl_multi_cleanup(multi);
      throw std::runtime_error("fetcher: cannot create its epoll set: " + why);
    }
    epoll_event wake{};
    wake.events = EPOLLIN;
    wake.data.fd = wake_fd;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &wake);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  }

  void close_fds() {
    if (epoll_fd >= 0) close(epoll_fd);
    if (wake_fd >= 0) close(wake_fd);
    epoll_fd = wake_fd = -1;
  }

  ~Impl() {
    for (auto& [job, owned] : running) {
      curl_multi_remove_handle(multi, job->easy);
      curl_easy_cleanup(job->easy);
      curl_slist_free_all(job->headers);
    }
    running.clear();
    for (CURL* easy : free_handles) curl_easy_cleanup(easy);
    free_handles.clear();
    curl_multi_cleanup(multi);  // may still tell on_socket to forget sockets: the epoll set goes after
    close_fds();
  }

  // --- libcurl callbacks (must not throw) ---

  Watch& watch(curl_socket_t fd) {
    if (static_cast<size_t>(fd) >= watches.size()) watches.resize(static_cast<size_t>(fd) + 1);
    return watches[static_cast<size_t>(fd)];
  }

  // A socket of ours stays in the epoll set while libcurl keeps its connection for the next
  // transfer, which then costs no epoll_ctl (three of them per transfer otherwise, and system
  // calls are dear on a virtual machine). wait_for_sockets drops it should it stir while idle.
  // Sockets libcurl opens itself (its resolver's) are added and removed as it says, every time:
  // one closed without a word could come back under the same number.
  static int on_socket(CURL*, curl_socket_t fd, int what, void* user, void*) {
    auto* self = static_cast<Impl*>(user);
    try {
      Watch& w = self->watch(fd);
      if (what == CURL_POLL_REMOVE) {
        if (w.ours && w.events != 0) {
          w.parked = true;
        } else {
          epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, nullptr);  // fails harmlessly if already closed
          w.events = 0;
        }
        return 0;
      }
      const uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
      w.parked = false;
      if (w.ours && w.events == events) return 0;
      epoll_event ev{};
      ev.events = events;
      ev.data.fd = fd;
      // Not ours, the set may know the number or not (a socket closed and reopened by libcurl).
      const int op = w.ours && w.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
      if (epoll_ctl(self->epoll_fd, op, fd, &ev) != 0 && !(op == EPOLL_CTL_MOD && errno == ENOENT &&
                                                            epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0)) {
        spdlog::warn("fetcher: cannot watch socket {}: {}", fd, std::strerror(errno));
        w.events = 0;
        return -1;  // libcurl fails the transfers on it
      }
      w.events = events;
      return 0;
    } catch (...) {
      return -1;
    }
  }

  static int on_close_socket(void* user, curl_socket_t fd) {
    auto* self = static_cast<Impl*>(user);
    if (static_cast<size_t>(fd) < self->watches.size()) self->watches[static_cast<size_t>(fd)] = Watch{};
    return close(fd);  // which also takes it out of the epoll set
  }

  static int on_timer(CURLM*, long timeout_ms, void* user) {
    auto* self = static_cast<Impl*>(user);
    if (timeout_ms < 0)
      self->curl_timer.reset();
    else
      self->curl_timer = Clock::now() + milliseconds(timeout_ms);
    return 0;
  }

  static size_t on_write(char* data, size_t size, size_t count, void* user) {
    auto* job = static_cast<Job*>(user);
    size_t n = size * count;
    job->answer_begun = true;
    if (job->status >= 300) return n;  // an error page: not kept, so it cannot hide the HTTP status
    if (job->body.size() + n > job->fetcher->settings.max_body_bytes) {
      job->body_exceeded = true;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    try {
      job->body.append(data, n);
    } catch (...) {
      return 0;
    }
    return n;
  }

  // Whether a Content-Length value is a number larger than `cap` (an unreadable one is left to libcurl).
  static bool announces_more_than(std::string_view value, size_t cap) {
    if (value.empty() || value.size() > 19 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    return std::stoull(std::string(value)) > cap;
  }

  static size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* job = static_cast<Job*>(user);
    size_t n = size * count;
    try {
      std::string_view line = trim(std::string_view(data, n));
      job->answer_begun = true;
      if (line.empty()) {  // the end of a head: is another one awaited?
        bool followed = job->status >= 300 && job->status < 400 && job->has_location && job->fetcher->settings.max_redirects > 0;
        if ((job->status >= 100 && job->status < 200) || followed) job->answer_begun = false;
        return n;
      }
      if (line.substr(0, 5) == "HTTP/") {  // a new response head: redirect hop, 1xx or the final one
        job->status = 0;
        job->has_location = false;
        job->reason.clear();
        job->etag.clear();
        job->last_modified.clear();
        job->content_type.clear();
        job->retry_after_s.reset();
        size_t sp = line.find(' ');
        if (sp != std::string_view::npos) {
          std::string_view rest = line.substr(sp + 1);
          size_t sp2 = rest.find(' ');
          std::string code(rest.substr(0, sp2));
          if (!code.empty() && code.size() <= 3 &&
              std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
            job->status = std::stol(code);
          if (sp2 != std::string_view::npos) job->reason = std::string(trim(rest.substr(sp2 + 1)));
        }
        return n;
      }
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) return n;
      std::string_view name = trim(line.substr(0, colon));
      std::string_view value = trim(line.substr(colon + 1));
      if (iequals(name, "ETag")) job->etag = value;
      else if (iequals(name, "Last-Modified")) job->last_modified = value;
      else if (iequals(name, "Content-Type")) job->content_type = value;
      else if (iequals(name, "Retry-After")) job->retry_after_s = parse_retry_after(value);
      else if (iequals(name, "Location")) job->has_location = !value.empty();
      else if (iequals(name, "Content-Length") && job->status >= 200 && job->status < 300 &&
               announces_more_than(value, job->fetcher->settings.max_body_bytes)) {
        // Over the cap before a byte of it arrives (even compressed, such a body would be over
        // it decoded): fail now rather than read to the cap or, for a server that lies about the
        // length, to the timeout.
        job->body_exceeded = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
      }
    } catch (...) {
      return 0;
    }
    return n;
  }

  // Every connection (each redirect hop, each address tried) passes here: the SSRF guard sees the
  // address actually connected to, after DNS resolution.
  static curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
    auto* job = static_cast<Job*>(user);
    if (purpose == CURLSOCKTYPE_IPCXN) {
      try {
        if (auto refusal = job->fetcher->policy.refusal(&address->addr)) {
          job->refused = std::move(*refusal);
          spdlog::trace("fetcher: tag {} {}: {}", job->request.tag, job->request.url, job->refused);
          return CURL_SOCKET_BAD;
        }
      } catch (...) {
        return CURL_SOCKET_BAD;
      }
    }
    curl_socket_t fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd == CURL_SOCKET_BAD) return fd;
    try {
      job->fetcher->watch(fd) = Watch{0, true, false};
    } catch (...) {
      close(fd);
      return CURL_SOCKET_BAD;
    }
    return fd;
  }

  // --- job lifecycle ---

  void add(FetchRequest request) {
    auto job = std::make_unique<Job>();
    job->request = std::move(request);
    job->fetcher = this;
    job->host = host_of(job->request.url);
    job->started = Clock::now();
    job->deadline = job->started + milliseconds(settings.job_deadline_ms);
    queue.push_back(std::move(job));
  }

  void complete(Job& job, FetchStatus status, std::string error = {}) {
    FetchResult r;
    r.tag = job.request.tag;
    r.status = status;
    r.http_status = job.status;
    r.attempts = job.attempts;
    r.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - job.started);
    r.error = std::move(error);
    if (status == FetchStatus::failed && (job.status == 429 || job.status == 503)) r.retry_after_s = job.retry_after_s;
    if (status != FetchStatus::failed) {
      r.body = std::move(job.body);
      r.etag = std::move(job.etag);
      r.last_modified = std::move(job.last_modified);
      r.content_type = std::move(job.content_type);
      char* url = nullptr;
      if (job.easy != nullptr && curl_easy_getinfo(job.easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
        r.final_url = url;
      else
        r.final_url = job.request.url;
    }
    spdlog::trace("fetcher: tag {} {} finished: {} http {} attempts {} in {} ms{}{}", r.tag, job.request.url,
                  status == FetchStatus::ok ? "ok" : status == FetchStatus::not_modified ? "not_modified" : "failed",
                  r.http_status, r.attempts, r.duration.count(), r.error.empty() ? "" : ": ", r.error);
    results.push_back(std::move(r));
  }

  void start_queued() {
    while (!queue.empty() && running.size() < static_cast<size_t>(settings.max_in_flight)) {
      JobPtr job = std::move(queue.front());
      queue.pop_front();
      if (settings.max_host_connections > 0 && running_for(job->host) >= settings.max_host_connections) {
        host_held[job->host].push_back(std::move(job));
        ++held;
        continue;
      }
      start_attempt(std::move(job));
    }
  }

  // Looked up without inserting: a job whose transfer never starts must leave no entry behind.
  int running_for(const std::string& host) const {
    auto it = host_running.find(host);
    return it == host_running.end() ? 0 : it->second;
  }

  // A transfer of `host` ended: the next one held for that host may start.
  void host_transfer_ended(const std::string& host) {
    auto it = host_running.find(host);
    if (it != host_running.end() && --it->second <= 0) host_running.erase(it);
    auto held_it = host_held.find(host);
    if (held_it == host_held.end()) return;
    queue.push_front(std::move(held_it->second.front()));
    held_it->second.pop_front();
    --held;
    if (held_it->second.empty()) host_held.erase(held_it);
  }

  // A handle with the options that are the same for every transfer. Handles are reused without
  // curl_easy_reset, which would make every transfer set these again (copying a dozen strings).
  CURL* new_handle() {
    CURL* easy = curl_easy_init();
    if (easy == nullptr) return nullptr;
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Impl::on_write);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Impl::on_header);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &Impl::on_open_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &Impl::on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, settings.max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, static_cast<long>(std::max(0, settings.max_redirects)));
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // every encoding libcurl can decode
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    // A proxy from the environment would resolve and connect on our behalf, past the SSRF guard.
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");  // also spares a getenv("no_proxy") per transfer
    curl_easy_setopt(easy, CURLOPT_USERAGENT, settings.user_agent.c_str());
    if (settings.connect_timeout_ms > 0) curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, settings.connect_timeout_ms);
    if (settings.low_speed_bytes_per_s > 0 && settings.low_speed_window_s > 0) {
      curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, settings.low_speed_bytes_per_s);
      curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, settings.low_speed_window_s);
    }
    return easy;
  }

  void start_attempt(JobPtr job) {
    auto now = Clock::now();
    auto remaining = std::chrono::duration_cast<milliseconds>(job->deadline - now).count();
    if (remaining <= 0) {
      complete(*job, FetchStatus::failed, deadline_message(job->last_error));
      return;
    }
    CURL* easy = nullptr;
    if (!free_handles.empty()) {
      easy = free_handles.back();
      free_handles.pop_back();
    } else {
      easy = new_handle();
    }
    if (easy == nullptr) {
      complete(*job, FetchStatus::failed, "curl_easy_init failed");
      return;
    }
    job->easy = easy;
    job->reset_attempt();
    job->attempts++;
    job->attempt_started = now;
    job->attempt_timeout_ms = settings.transfer_timeout_ms;
    job->timeout_clamped = false;
    if (job->attempt_timeout_ms <= 0 || remaining < job->attempt_timeout_ms) {
      job->attempt_timeout_ms = remaining;
      job->timeout_clamped = true;
    }

    const FetchRequest& req = job->request;
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers,
                                "Accept: application/rss+xml, application/atom+xml, application/feed+json, "
                                "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
                                "application/json;q=0.8, */*;q=0.5");
    if (!req.etag.empty() && !has_crlf(req.etag))
      headers = curl_slist_append(headers, ("If-None-Match: " + req.etag).c_str());
    if (!req.last_modified.empty() && !has_crlf(req.last_modified))
      headers = curl_slist_append(headers, ("If-Modified-Since: " + req.last_modified).c_str());
    job->headers = headers;

    // The options of every transfer; new_handle() set the ones that never change.
    Job* j = job.get();
    curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, j);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, j);
    // Over TLS, wait for ALPN to say whether the connection multiplexes (HTTP/2). Never over
    // plain HTTP: there curl would hold every transfer to a host until the first response
    // arrived, so one slow feed would stall its whole host.
    const bool https = req.url.size() >= 8 && strncasecmp(req.url.c_str(), "https://", 8) == 0;
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, https ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, job->attempt_timeout_ms);

    spdlog::trace("fetcher: tag {} {} attempt {}", req.tag, req.url, job->attempts);
    CURLMcode mc = curl_multi_add_handle(multi, easy);
    if (mc != CURLM_OK) {
      release_handle(*job, false);
      complete(*job, FetchStatus::failed, std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc));
      return;
    }
    ++host_running[j->host];
    running.emplace(j, std::move(job));
  }

  void release_handle(Job& job, bool in_multi) {
    if (in_multi) curl_multi_remove_handle(multi, job.easy);
    curl_slist_free_all(job.headers);
    job.headers = nullptr;
    if (free_handles.size() < static_cast<size_t>(settings.max_in_flight))
      free_handles.push_back(job.easy);
    else
      curl_easy_cleanup(job.easy);
    job.easy = nullptr;
  }

  std::string deadline_message(const std::string& last_error) const {
    std::string msg = "job deadline of " + std::to_string(settings.job_deadline_ms) + " ms exceeded";
    if (!last_error.empty()) msg += " (last error: " + last_error + ")";
    return msg;
  }

  std::string http_error(const Job& job) const {
    std::string reason = job.reason.empty() ? standard_reason(job.status) : job.reason;
    return "HTTP " + std::to_string(job.status) + (reason.empty() ? "" : " " + reason);
  }

  std::string curl_error(CURLcode rc, const Job& job) const {
    return job.errbuf[0] != '\0' ? std::string(job.errbuf) : std::string(curl_easy_strerror(rc));
  }

  struct Verdict {
    std::optional<FetchStatus> success;
    bool transient = false;
    std::string error;
  };

  Verdict judge(CURLcode rc, Job& job) {
    if (!job.refused.empty() && rc != CURLE_OK) return {std::nullopt, false, job.refused};
    switch (rc) {
      case CURLE_OK: break;
      case CURLE_WRITE_ERROR:
        if (job.body_exceeded)
          return {std::nullopt, false, "body exceeds " + std::to_string(settings.max_body_bytes) + " bytes"};
        return {std::nullopt, false, curl_error(rc, job)};
      case CURLE_FILESIZE_EXCEEDED:
        return {std::nullopt, false, "body exceeds " + std::to_string(settings.max_body_bytes) + " bytes"};
      case CURLE_TOO_MANY_REDIRECTS:
        return {std::nullopt, false, "too many redirects (more than " + std::to_string(settings.max_redirects) + ")"};
      case CURLE_UNSUPPORTED_PROTOCOL:
        return {std::nullopt, false, "unsupported protocol, only http and https: " + curl_error(rc, job)};
      case CURLE_URL_MALFORMAT:
        return {std::nullopt, false, "malformed URL: " + curl_error(rc, job)};
      case CURLE_OPERATION_TIMEDOUT: {
        std::string_view msg(job.errbuf);
        if (msg.substr(0, 18) == "Operation too slow") {
          // Nothing of the answer yet (a server whose accept queue overflowed, or one that hangs
          // before answering) is retried like a timeout; a body that began and then trickles is not.
          if (!job.answer_begun)
            return {std::nullopt, true, "no answer within " + std::to_string(settings.low_speed_window_s) + " s"};
          return {std::nullopt, false,
                  "too slow: less than " + std::to_string(settings.low_speed_bytes_per_s) + " bytes/s for " +
                      std::to_string(settings.low_speed_window_s) + " s"};
        }
        auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - job.attempt_started).count();
        if (job.timeout_clamped && elapsed + 20 >= job.attempt_timeout_ms)
          return {std::nullopt, false, deadline_message(job.last_error)};
        curl_off_t connect_us = 0;
        curl_easy_getinfo(job.easy, CURLINFO_CONNECT_TIME_T, &connect_us);
        bool connecting = msg.substr(0, 19) == "Resolving timed out" || msg.substr(0, 20) == "Connection timed out" ||
                          msg.substr(0, 17) == "Failed to connect" ||
                          (msg.substr(0, 19) != "Operation timed out" && connect_us == 0);
        if (connecting) {
          long limit = settings.connect_timeout_ms > 0 ? std::min(settings.connect_timeout_ms, job.attempt_timeout_ms)
                                                       : job.attempt_timeout_ms;
          return {std::nullopt, true, "connect timeout after " + std::to_string(limit) + " ms"};
        }
        return {std::nullopt, true, "transfer timeout after " + std::to_string(job.attempt_timeout_ms) + " ms"};
      }
      case CURLE_COULDNT_CONNECT:
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
      case CURLE_SSL_CONNECT_ERROR:
        return {std::nullopt, true, curl_error(rc, job)};
      default:
        return {std::nullopt, false, curl_error(rc, job)};
    }
    long code = 0;
    curl_easy_getinfo(job.easy, CURLINFO_RESPONSE_CODE, &code);
    if (code != 0) job.status = code;
    if (job.status == 304) return {FetchStatus::not_modified, false, {}};
    if (job.status >= 200 && job.status < 300) return {FetchStatus::ok, false, {}};
    if (job.status == 0) return {std::nullopt, false, "no HTTP response"};
    bool transient = job.status == 429 || job.status >= 500;
    return {std::nullopt, transient, http_error(job)};
  }

  long backoff_ms(int attempts) {
    long base = std::max(0L, settings.retry_base_delay_ms);
    long delay = base << std::min(attempts - 1, 16);
    if (delay <= 0) return 0;
    std::uniform_int_distribution<long> jitter(0, delay);
    return delay / 2 + jitter(rng);  // between 0.5x and 1.5x the exponential delay
  }

  void finish_attempt(Job* raw, CURLcode rc) {
    auto it = running.find(raw);
    if (it == running.end()) return;
    JobPtr job = std::move(it->second);
    running.erase(it);
    host_transfer_ended(job->host);

    Verdict v = judge(rc, *job);
    if (v.success) {
      complete(*job, *v.success);
      release_handle(*job, true);
      return;
    }
    release_handle(*job, true);
    if (!v.transient) {
      complete(*job, FetchStatus::failed, v.error);
      return;
    }
    if (job->attempts >= settings.max_attempts) {
      complete(*job, FetchStatus::failed,
               v.error + (job->attempts > 1 ? " (after " + std::to_string(job->attempts) + " attempts)" : ""));
      return;
    }
    auto now = Clock::now();
    bool honour_retry_after = (job->status == 429 || job->status == 503) && job->retry_after_s.has_value();
    long delay = honour_retry_after ? *job->retry_after_s * 1000 : backoff_ms(job->attempts);
    auto left = std::chrono::duration_cast<milliseconds>(job->deadline - now).count();
    if (delay >= left) {
      if (honour_retry_after)
        complete(*job, FetchStatus::failed,
                 v.error + "; Retry-After " + std::to_string(*job->retry_after_s) + " s is beyond the job deadline of " +
                     std::to_string(settings.job_deadline_ms) + " ms");
      else
        complete(*job, FetchStatus::failed,
                 v.error + " (no retry: job deadline of " + std::to_string(settings.job_deadline_ms) +
                     " ms too close)");
      return;
    }
    spdlog::trace("fetcher: tag {} {} attempt {} failed: {}; retry in {} ms", job->request.tag, job->request.url,
                  job->attempts, v.error, delay);
    job->last_error = v.error;
    waiting.emplace(now + milliseconds(delay), std::move(job));
  }

  void promote_due(Clock::time_point now) {
    while (!waiting.empty() && waiting.begin()->first <= now) {
      queue.push_back(std::move(waiting.begin()->second));
      waiting.erase(waiting.begin());
    }
  }

  void harvest() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      CURLcode rc = msg->data.result;  // read before the handle is removed
      char* priv = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
      if (priv != nullptr) finish_attempt(reinterpret_cast<Job*>(priv), rc);
    }
  }

  // Runs libcurl's timeouts once due (also the "now" of a transfer just added).
  void run_due_timer() {
    if (!curl_timer || *curl_timer > Clock::now()) return;
    curl_timer.reset();
    int still_running = 0;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &still_running);
  }

  // Waits up to `wait` for sockets, then runs the transfers that are ready. Returns whether
  // wakeup() was called.
  bool wait_for_sockets(Clock::duration wait) {
    auto wait_ms = std::chrono::ceil<milliseconds>(std::max(wait, Clock::duration::zero())).count();
    epoll_event events[64];
    int n = epoll_wait(epoll_fd, events, 64, static_cast<int>(std::min<long long>(wait_ms, 1'000'000'000)));
    bool woken_now = false;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd) {
        uint64_t count;
        while (read(wake_fd, &count, sizeof count) > 0) {
        }
        woken_now = true;
        continue;
      }
      if (static_cast<size_t>(fd) < watches.size() && watches[static_cast<size_t>(fd)].parked) {
        // An idle connection stirred (its server closed it, most likely). libcurl is not
        // watching it and finds out when it next tries to reuse it; until then, stop waking up.
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
        Watch& watch = watches[static_cast<size_t>(fd)];
        watch.events = 0;
        watch.parked = false;
        continue;
      }
      const uint32_t e = events[i].events;
      int mask = (e & EPOLLIN ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                 (e & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      int still_running = 0;
      curl_multi_socket_action(multi, fd, mask, &still_running);
    }
    run_due_timer();
    return woken_now;
  }

  std::vector<FetchResult> poll(milliseconds timeout) {
    auto end = Clock::now() + timeout;
    for (;;) {
      promote_due(Clock::now());
      start_queued();
      run_due_timer();
      harvest();
      if (!results.empty()) break;
      auto now = Clock::now();
      if (woken.exchange(false) || now >= end) break;
      auto wait = end - now;
      if (!waiting.empty()) wait = std::min<Clock::duration>(wait, waiting.begin()->first - now);
      if (curl_timer) wait = std::min<Clock::duration>(wait, *curl_timer - now);
      if (!queue.empty() && running.size() < static_cast<size_t>(settings.max_in_flight)) wait = Clock::duration::zero();
      if (wait_for_sockets(wait)) {
        woken.store(false);
        harvest();  // still collect what finished meanwhile
        break;
      }
    }
    std::vector<FetchResult> out;
    out.swap(results);
    return out;
  }

  size_t pending() const { return queue.size() + held + running.size() + waiting.size(); }

  void wakeup() {
    woken.store(true);
    const uint64_t one = 1;
    if (write(wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
      spdlog::warn("fetcher: wakeup failed: {}", std::strerror(errno));
  }
};

Fetcher::Fetcher(FetchSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {}
Fetcher::~Fetcher() = default;
void Fetcher::add(FetchRequest request) { impl_->add(std::move(request)); }
std::vector<FetchResult> Fetcher::poll(std::chrono::milliseconds timeout) { return impl_->poll(timeout); }
size_t Fetcher::pending() const { return impl_->pending(); }
void Fetcher::wakeup() { impl_->wakeup(); }

}  // namespace feedpipe::fetcher
