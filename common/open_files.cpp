#include "common/open_files.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace feedpipe {

rlim_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    throw std::runtime_error(std::string("cannot read the open-file limit: ") + std::strerror(errno));
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
      throw std::runtime_error(std::string("cannot raise the open-file limit: ") + std::strerror(errno));
  }
  return limit.rlim_cur;
}

}  // namespace feedpipe
