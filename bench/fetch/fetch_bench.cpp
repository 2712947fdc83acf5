// The fetcher alone against a local server that answers each request after a delay, with many
// transfers in flight: wall time and the CPU of the fetching thread per 1,000 fetches. Shows what
// the fetch loop costs while most transfers wait on slow servers (the common case on the
// internet), which the throughput bench, served by a fast local nginx, does not.
//   fetch_bench [FETCHES=4000] [DELAY_MS=100] [IN_FLIGHT=256]
#include <httplib.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "common/http.h"
#include "consumer/fetcher/fetcher.h"

namespace {

double thread_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const int fetches = argc > 1 ? std::atoi(argv[1]) : 4000;
  const int delay_ms = argc > 2 ? std::atoi(argv[2]) : 100;
  const int in_flight = argc > 3 ? std::atoi(argv[3]) : 256;

  httplib::Server server;
  server.new_task_queue = [in_flight] { return new httplib::ThreadPool(static_cast<size_t>(in_flight) + 16); };
  server.Get("/feed", [delay_ms](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    res.status = 304;
  });
  const int port = feedpipe::bind_server(server, "127.0.0.1", 0);
  if (port <= 0) {
    std::fprintf(stderr, "fetch_bench: cannot listen on 127.0.0.1\n");
    return 1;
  }
  std::thread listener([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  feedpipe::fetcher::FetchSettings settings;
  settings.allow_private_networks = true;
  settings.max_in_flight = in_flight;
  settings.max_host_connections = 0;  // one local host stands for many
  feedpipe::fetcher::Fetcher fetcher(settings);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/feed?n=";
  for (int i = 0; i < fetches; ++i) fetcher.add({static_cast<uint64_t>(i), url + std::to_string(i), "\"e\"", ""});

  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  int done = 0, failed = 0;
  while (done < fetches) {
    for (auto& r : fetcher.poll(std::chrono::milliseconds(100))) {
      ++done;
      failed += r.status != feedpipe::fetcher::FetchStatus::not_modified;
    }
  }
  const double cpu = thread_cpu_seconds() - cpu_start;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  server.stop();
  listener.join();
  std::printf("%d fetches, %d ms each, %d in flight: %.2f s, %.0f fetches/s, fetch thread %.3f CPU s per 1,000, %d failed\n",
              fetches, delay_ms, in_flight, wall, fetches / wall, cpu * 1000 / fetches, failed);
  return failed == 0 ? 0 : 1;
}
