#pragma once
// Names the calling thread (up to 15 characters) so that `top -H`, `perf report --sort comm`
// and debuggers tell the roles apart.
#include <pthread.h>

namespace feedpipe {

inline void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace feedpipe
