#pragma once
// Threads named by role (up to 15 characters) so that `top -H`, `perf report --sort comm` and
// debuggers tell them apart.
#include <pthread.h>

#include <thread>
#include <utility>

namespace feedpipe {

// Starts a thread that names itself `name` (a string literal) and then runs `body`.
template <typename Body>
std::thread named_thread(const char* name, Body body) {
  return std::thread([name, body = std::move(body)]() mutable {
    pthread_setname_np(pthread_self(), name);
    body();
  });
}

}  // namespace feedpipe
