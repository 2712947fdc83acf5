#pragma once
// Files compiled into the binary at build time (see cmake/embed.cmake).
#include <string_view>
#include <vector>

namespace feedpipe {

struct EmbeddedFile {
  std::string_view name;     // file name without directory, e.g. "0001_init.sql"
  std::string_view content;
};

}  // namespace feedpipe

// Sorted by name.
const std::vector<feedpipe::EmbeddedFile>& feedpipe_embedded_migrations();
const std::vector<feedpipe::EmbeddedFile>& feedpipe_embedded_web();
const std::vector<feedpipe::EmbeddedFile>& feedpipe_embedded_docs();  // docs/openapi.json
