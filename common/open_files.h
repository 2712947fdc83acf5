#pragma once
// The open-file limit: a server or a load generator holds one descriptor per stream.
#include <sys/resource.h>

namespace feedpipe {

// Raises this process's soft open-file limit to its hard limit and returns the soft limit now in
// force (RLIM_INFINITY: none). Throws std::runtime_error, with the reason, when the limit cannot
// be read or raised.
rlim_t raise_open_file_limit();

}  // namespace feedpipe
