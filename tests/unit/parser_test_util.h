#pragma once
// Shared by the parser tests that compare against fixture files.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "consumer/parser/text.h"

namespace feedpipe::parser::test {

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Plain text for comparing titles: tags (`<…>`) removed, then entities decoded.
inline std::string plain_text(std::string_view text) {
  std::string stripped;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '<') {
      size_t end = text.find('>', i);
      if (end != std::string_view::npos) {
        i = end;
        continue;
      }
    }
    stripped += text[i];
  }
  return decode_entities(stripped);
}

}  // namespace feedpipe::parser::test
