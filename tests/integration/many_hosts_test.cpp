// The many-hosts shape across a real network link (issue 17). The store side (kafka-mock, a
// producer and a recorder on the SQLite file) runs in the test's network namespace on loopback; a
// "fetch host" is a network namespace of its own, joined to the test's by a veth pair, where every
// process also runs in a mount namespace of its own in which the store's folder is an empty tmpfs:
// two consumers without a database, a broadcaster with --api, the feed server and an SSE client.
// The broker and the producer's API listen on 127.0.0.1 of the store side only (and the broker
// advertises 127.0.0.1:PORT), so forwarders of the test (tcp_forward.py) carry their ports across
// the link. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): without it the test fails and says why.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

const std::string kTestsDir = FEEDPIPE_TESTS_DIR;

struct CommandResult {
  int status = -1;  // exit status, or -1
  std::string output;  // stdout and stderr
};

// Runs argv to its end (at most `timeout`, then SIGKILL by PID) and returns its status and output.
CommandResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 20s) {
  CommandResult result;
  char path[] = "/tmp/feedpipe-cmd-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return result;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fd);
  int status = 0;
  bool exited = pid > 0 && wait_until([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (pid > 0 && !exited) {
    ::kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  result.output = read_file(path);
  unlink(path);
  if (exited && WIFEXITED(status)) result.status = WEXITSTATUS(status);
  return result;
}

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// A child process of any program, stdout and stderr to files; it gets SIGKILL if the test process
// dies, and the destructor ends it by PID: SIGTERM, then SIGKILL after 15 s.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log_path, const std::string& cwd)
      : log_path_(log_path), stdout_path_(log_path + ".stdout") {
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int out = open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int null = open("/dev/null", O_RDONLY);
      dup2(out, 1);
      dup2(err, 2);
      dup2(null, 0);
      if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
      setpgid(0, 0);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() {
    if (running()) {
      ::kill(pid_, SIGTERM);
      if (!wait_until([&] { return !running(); }, 15s)) {
        ::kill(pid_, SIGKILL);
        wait_until([&] { return !running(); }, 5s);
      }
    }
  }
  bool running() {
    if (exited_) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      status_ = status;
      return false;
    }
    return true;
  }
  // Waits for exit; the exit status, or -1 on timeout or signal.
  int wait_exit(std::chrono::milliseconds timeout) {
    if (!wait_until([&] { return !running(); }, timeout)) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  std::string log() const { return read_file(log_path_); }
  std::string output() const { return read_file(stdout_path_); }
  std::string first_line(std::chrono::milliseconds timeout) const { return first_line_of(stdout_path_, timeout); }

 private:
  std::string log_path_, stdout_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

// The fetch host's network: namespace fp-fetch-<pid> and a veth pair, 10.231.<pid % 250>.1/30 on the
// test's side, .2 inside. Removed on destruction (the veth pair goes with its root end).
class FetchHostNetwork {
 public:
  FetchHostNetwork() {
    const int pid = static_cast<int>(getpid());
    ns_ = "fp-fetch-" + std::to_string(pid);
    root_if_ = "fpr" + std::to_string(pid % 1000000);
    fetch_if_ = "fpf" + std::to_string(pid % 1000000);
    const std::string subnet = "10.231." + std::to_string(pid % 250) + ".";
    root_ip_ = subnet + "1";
    fetch_ip_ = subnet + "2";
  }
  // Creates it all; an empty string on success, else what failed.
  std::string create() {
    CommandResult r = run({"ip", "netns", "add", ns_});
    if (r.status != 0)
      return "cannot create a network namespace (the test needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN): `ip netns add " +
             ns_ + "` exited with " + std::to_string(r.status) + ": " + r.output;
    ns_created_ = true;
    r = run({"ip", "link", "add", root_if_, "type", "veth", "peer", "name", fetch_if_, "netns", ns_});
    if (r.status != 0) return "cannot create the veth pair " + root_if_ + "/" + fetch_if_ + ": " + r.output;
    veth_created_ = true;
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"ip", "addr", "add", root_ip_ + "/30", "dev", root_if_},
             {"ip", "link", "set", root_if_, "up"},
             {"ip", "-n", ns_, "addr", "add", fetch_ip_ + "/30", "dev", fetch_if_},
             {"ip", "-n", ns_, "link", "set", fetch_if_, "up"},
             {"ip", "-n", ns_, "link", "set", "lo", "up"}}) {
      r = run(argv);
      if (r.status != 0) return "`" + join(argv) + "` failed: " + r.output;
    }
    return "";
  }
  ~FetchHostNetwork() {
    if (veth_created_) run({"ip", "link", "del", root_if_});
    if (ns_created_) run({"ip", "netns", "del", ns_});
  }
  bool set_link(bool up) { return run({"ip", "link", "set", root_if_, up ? "up" : "down"}).status == 0; }

  // Runs `fn` on a thread of this process that has joined the fetch host's network namespace:
  // sockets it creates (clients, and listening servers that outlive it) belong to that namespace.
  void in_namespace(const std::function<void()>& fn) const {
    std::string error;
    std::thread([&] {
      int fd = open(("/var/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        error = "cannot join " + ns_ + ": " + std::strerror(errno);
        if (fd >= 0) close(fd);
        return;
      }
      close(fd);
      fn();
    }).join();
    if (!error.empty()) throw std::runtime_error(error);
  }

  std::string ns_, root_if_, fetch_if_, root_ip_, fetch_ip_;

 private:
  bool ns_created_ = false, veth_created_ = false;
};

class ManyHostsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string error = net_.create();
    ASSERT_TRUE(error.empty()) << error;

    // The store side, on the test namespace's loopback.
    broker_ = std::make_unique<Process>("kafka-mock", std::vector<std::string>{"kafka-mock"}, store_.file("kafka-mock.log"));
    const std::string brokers = broker_->first_line(10s);
    ASSERT_EQ(brokers.rfind("127.0.0.1:", 0), 0u) << brokers << broker_->log();
    broker_port_ = std::stoi(brokers.substr(10));
    ASSERT_TRUE(run_migrate(store_, db()));
    producer_port_ = free_port();
    producer_ = std::make_unique<Process>(
        "producer", std::vector<std::string>{"producer", "--brokers", brokers, "--db", db(), "--http", local(producer_port_)},
        store_.file("producer.log"));
    recorder_port_ = free_port();
    recorder_ = std::make_unique<Process>(
        "recorder", std::vector<std::string>{"recorder", "--brokers", brokers, "--db", db(), "--http", local(recorder_port_)},
        store_.file("recorder.log"));
    ASSERT_TRUE(wait_ready(producer_port_)) << producer_->log();
    ASSERT_TRUE(wait_ready(recorder_port_)) << recorder_->log();

    // The link: 127.0.0.1:P on the fetch host -> ROOT_IP:P -> 127.0.0.1:P on the store side.
    for (int port : {broker_port_, producer_port_}) {
      forward(store_side({"python3", kTestsDir + "/integration/tcp_forward.py", net_.root_ip_, std::to_string(port), "127.0.0.1",
                          std::to_string(port)}));
      forward(fetch_host({"python3", kTestsDir + "/integration/tcp_forward.py", "127.0.0.1", std::to_string(port), net_.root_ip_,
                          std::to_string(port)}));
      if (HasFatalFailure()) return;
    }

    // The feed server listens inside the fetch host's namespace.
    net_.in_namespace([&] { feeds_ = std::make_unique<FeedServer>(); });
  }

  void TearDown() override {
    // On failure, the logs of the fetch host's processes say what happened there.
    if (HasFailure()) {
      for (auto& [name, child] : fetch_roles_)
        std::cerr << "---- " << name << " (fetch host) ----\n" << child->log().substr(0, 20000) << "\n";
      for (auto& f : forwarders_) std::cerr << "---- a forwarder ----\n" << f->log().substr(0, 5000) << "\n";
    }
  }

  std::string db() const { return store_.file("feedpipe.db"); }
  static std::string local(int port) { return "127.0.0.1:" + std::to_string(port); }

  std::vector<std::string> store_side(std::vector<std::string> argv) { return argv; }

  // argv run on the fetch host: its network namespace, and a mount namespace of its own in which
  // the store's folder is an empty tmpfs.
  std::vector<std::string> fetch_host(const std::vector<std::string>& argv) {
    std::vector<std::string> wrapped{"ip", "netns", "exec", net_.ns_, "unshare", "--mount", "--propagation", "private",
                                     "sh", "-c", "mount -t tmpfs none \"$0\" && exec \"$@\"", store_.path()};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    return wrapped;
  }

  void forward(const std::vector<std::string>& argv) {
    forwarders_.push_back(std::make_unique<Child>(argv, store_.file("forward" + std::to_string(forwarders_.size()) + ".log"),
                                                  fetch_cwd_.path()));
    ASSERT_EQ(forwarders_.back()->first_line(10s), "listening") << join(argv) << "\n" << forwarders_.back()->log();
  }

  // A feedpipe role on the fetch host; its logs go to the store's folder through descriptors the
  // test opened (the process cannot see that folder).
  Child& start_fetch_role(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), feedpipe_binary());
    fetch_roles_.emplace_back(name, std::make_unique<Child>(fetch_host(args), store_.file(name + ".log"), fetch_cwd_.path()));
    return *fetch_roles_.back().second;
  }

  bool fetch_host_ready(int port, std::chrono::milliseconds timeout = 30s) {
    bool ready = false;
    net_.in_namespace([&] { ready = wait_ready(port, timeout); });
    return ready;
  }

  int64_t fetch_host_metric(int port, const std::string& series) {
    int64_t value = -1;
    net_.in_namespace([&] { value = metric(port, series); });
    return value;
  }

  std::vector<std::string> feed_urls(int first, int count) {
    std::vector<std::string> urls;
    for (int i = first; i < first + count; ++i) urls.push_back(feeds_->url(i));  // 127.0.0.1 of the fetch host
    return urls;
  }

  // The SSE client on the fetch host (sse_client.py: reconnects with Last-Event-ID).
  std::unique_ptr<Child> watch(const std::string& batch) {
    const std::string url = "http://" + local(broadcaster_port_) + "/v1/batches/" + batch + "/events";
    return std::make_unique<Child>(fetch_host({"python3", kTestsDir + "/integration/sse_client.py", url, "120"}),
                                   store_.file("sse-" + batch + ".log"), fetch_cwd_.path());
  }

  static SseResult events_of(Child& client) {
    SseResult result;
    std::istringstream lines(client.output());
    std::string line;
    while (std::getline(lines, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("closed_by_server")) {
        result.closed_by_server = true;
        continue;
      }
      SseEvent ev;
      ev.id = j["id"].is_number() ? j["id"].get<int64_t>() : 0;
      ev.event = j["event"].get<std::string>();
      ev.data = j["data"];
      result.events.push_back(std::move(ev));
    }
    return result;
  }

  int count(const std::string& sql) { return query_int(db(), sql); }

  // Every job of the batch recorded once, ok, with its five items and one event.
  void expect_recorded_once(const std::string& batch, int total) {
    const std::string where = " WHERE batch_id = '" + batch + "'";
    EXPECT_EQ(count("SELECT count(*) FROM events" + where), total + 1);
    EXPECT_EQ(count("SELECT count(*) FROM events" + where + " AND job_id IS NOT NULL"), total);
    EXPECT_EQ(count("SELECT count(*) FROM (SELECT job_id FROM events" + where +
                    " AND job_id IS NOT NULL GROUP BY job_id HAVING count(*) > 1)"), 0);
    EXPECT_EQ(count("SELECT count(*) FROM jobs" + where), total);
    EXPECT_EQ(count("SELECT count(*) FROM jobs" + where + " AND status = 'ok' AND items_new = 5"), total);
    EXPECT_EQ(count("SELECT count(*) FROM items WHERE feed_id IN (SELECT feed_id FROM jobs" + where + ")"), total * 5);
    EXPECT_EQ(count("SELECT status = 'completed' AND done = total AND failed = 0 FROM batches WHERE id = '" + batch + "'"), 1);
  }

  // Declared first, so destroyed last: the processes end before their network goes.
  FetchHostNetwork net_;
  TempDir store_;      // the store's folder: the SQLite file and every log
  TempDir fetch_cwd_;  // the fetch host's processes' working directory
  int broker_port_ = 0, producer_port_ = 0, recorder_port_ = 0, broadcaster_port_ = 0;
  std::unique_ptr<Process> broker_, producer_, recorder_;
  std::vector<std::unique_ptr<Child>> forwarders_;
  std::unique_ptr<FeedServer> feeds_;
  std::vector<std::pair<std::string, std::unique_ptr<Child>>> fetch_roles_;
};

TEST_F(ManyHostsTest, FetchHostWithoutTheDatabaseRecordsEveryJobOnceAcrossALinkOutage) {
  const auto started = std::chrono::steady_clock::now();
  auto phase = [&](const std::string& what) {
    std::cerr << "[" << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
              << " ms] " << what << "\n";
  };
  ASSERT_TRUE(std::filesystem::exists(db()));
  {  // The fetch host does not see the store's folder.
    CommandResult ls = run(fetch_host({"ls", "-A", store_.path()}));
    EXPECT_EQ(ls.status, 0) << ls.output;
    EXPECT_EQ(ls.output, "") << "the fetch host sees the store's folder " << store_.path();
    EXPECT_NE(run(fetch_host({"test", "-e", db()})).status, 0) << "the fetch host sees " << db();
  }

  // The fetch host's roles reach Kafka and the producer only across the link, through the
  // forwarders on their 127.0.0.1. The consumers' session timeout (30 s) outlasts the 10 s outage:
  // the group does not rebalance meanwhile, so no job is handed to another consumer and fetched
  // twice (that would still be recorded once, but it keeps the run the same every time), and each
  // consumer's fetched outcomes wait in its Kafka producer (message.timeout.ms is far longer) until
  // the link is back. A small backlog keeps most of the second batch's jobs in Kafka at the outage,
  // so the consumers also have to read jobs again after it.
  // The consumers start together so that both join the group's first round (the mock broker
  // gathers the members of an empty group for 3 s). A consumer that misses it starts a rebalance
  // that the mock broker lets wait for the others up to the session timeout (less 1 s), twice with
  // the cooperative protocol: the waits below allow for that (about 60 s; usually 3 s).
  std::vector<int> consumer_ports;
  for (int i = 0; i < 2; ++i) {
    consumer_ports.push_back(free_port());
    start_fetch_role("consumer" + std::to_string(i),
                     {"consumer", "--brokers", local(broker_port_), "--http", local(consumer_ports.back()),
                      "--allow-private-networks", "--kafka-session-timeout-ms", "30000", "--fetch-max-in-flight", "10",
                      "--consumer-max-backlog", "20", "--fetch-max-host-connections", "100",
                      "--fetch-retry-delay-ms", "50"});
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(fetch_host_ready(consumer_ports[i], 70s)) << "consumer" << i << ": " << fetch_roles_[i].second->log();
    phase("consumer" + std::to_string(i) + " ready");
  }
  broadcaster_port_ = free_port();
  Child& broadcaster = start_fetch_role("broadcaster", {"broadcaster", "--brokers", local(broker_port_), "--api",
                                                       "http://" + local(producer_port_), "--http",
                                                       local(broadcaster_port_), "--heartbeat-ms", "500"});
  ASSERT_TRUE(fetch_host_ready(broadcaster_port_)) << broadcaster.log();
  // Both consumers hold partitions before the first batch (a rebalance mid-batch would hand
  // fetched jobs over again).
  ASSERT_TRUE(wait_until([&] {
    int64_t total = 0;
    for (int port : consumer_ports) {
      int64_t n = fetch_host_metric(port, "feedpipe_consumer_assigned_partitions");
      if (n <= 0) return false;
      total += n;
    }
    return total == 12;
  }, 70s)) << "the consumers' group did not settle";
  phase("the consumers' group settled");

  // The first batch: every event once, in order, at a client on the fetch host.
  const int n = 300;
  const std::string first = submit_batch(producer_port_, feed_urls(0, n));
  {
    auto client = watch(first);
    EXPECT_EQ(client->wait_exit(90s), 0) << client->log();
    expect_complete_stream(events_of(*client), n);
  }
  expect_recorded_once(first, n);
  phase("first batch streamed and recorded");

  // The second batch, slower (0.2 s a feed, 10 in flight per consumer: about 3 s of fetching),
  // loses the link for 10 s once a third of it is recorded.
  feeds_->set_delay(200ms);
  const std::string second = submit_batch(producer_port_, feed_urls(n, n));
  auto client = watch(second);
  const std::string done_sql = "SELECT done FROM batches WHERE id = '" + second + "'";
  ASSERT_TRUE(wait_until([&] { return count(done_sql) >= n / 3; }, 60s)) << count(done_sql);
  ASSERT_TRUE(net_.set_link(false));
  phase("link down");
  const int done_at_outage = count(done_sql);
  std::this_thread::sleep_for(10s);
  const int done_before_link_up = count(done_sql);
  ASSERT_TRUE(net_.set_link(true));
  phase("link up");
  // Nothing crossed the link meanwhile: the store recorded only what it already held.
  EXPECT_LT(done_before_link_up, n) << "the outage did not hold anything back (done at its start: " << done_at_outage << ")";

  EXPECT_EQ(client->wait_exit(90s), 0) << client->log();
  expect_complete_stream(events_of(*client), n);
  ASSERT_TRUE(wait_until([&] { return count(done_sql) == n; }, 30s));
  expect_recorded_once(second, n);
  phase("second batch streamed and recorded");
  // Nothing left to do anywhere: the lag operators scale on falls to zero on both hosts, the
  // fetch host's measured across the link.
  EXPECT_TRUE(wait_until([&] {
    return fetch_host_metric(consumer_ports[0], "feedpipe_kafka_consumer_lag") == 0 &&
           fetch_host_metric(consumer_ports[1], "feedpipe_kafka_consumer_lag") == 0 &&
           metric(recorder_port_, "feedpipe_kafka_recorder_lag") == 0;
  }, 15s)) << fetch_host_metric(consumer_ports[0], "feedpipe_kafka_consumer_lag") << " "
           << fetch_host_metric(consumer_ports[1], "feedpipe_kafka_consumer_lag") << " "
           << metric(recorder_port_, "feedpipe_kafka_recorder_lag");
  EXPECT_EQ(count("SELECT count(*) FROM items"), 2 * n * 5);
  EXPECT_EQ(integrity_check(db()), "ok");
  EXPECT_GE(feeds_->total_requests(), 2 * n);

  // No process was restarted: every one is still running.
  EXPECT_TRUE(broker_->running()) << broker_->log();
  EXPECT_TRUE(producer_->running()) << producer_->log();
  EXPECT_TRUE(recorder_->running()) << recorder_->log();
  for (auto& [name, child] : fetch_roles_) EXPECT_TRUE(child->running()) << name << ": " << child->log();
  for (auto& f : forwarders_) EXPECT_TRUE(f->running()) << f->log();
  // A consumer without --db writes nothing where it runs.
  EXPECT_TRUE(std::filesystem::is_empty(fetch_cwd_.path()));
  const std::string reconnections = client->log();
  std::cerr << "second batch: " << done_at_outage << " jobs recorded when the link went down, " << done_before_link_up
            << " when it came back; its client " << (reconnections.empty() ? "never reconnected\n" : "logged:\n" + reconnections);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 170s);
}

}  // namespace
}  // namespace feedpipe::testing
