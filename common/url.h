#pragma once
// URL helpers built on libcurl's URL API (RFC 3986 parsing and reference resolution).
#include <optional>
#include <string>
#include <string_view>

namespace feedpipe {

// The canonical form that identifies a feed: scheme and host lowercased, default port and
// fragment dropped, path and query kept as given. Returns nullopt with `error` set when `url`
// is not an absolute http(s) URL.
std::optional<std::string> normalize_feed_url(std::string_view url, std::string* error = nullptr);

// Resolves `ref` against `base` (RFC 3986 section 5). An empty base leaves `ref` as it is;
// an absolute `ref` is returned unchanged. Returns `ref` when resolution fails.
std::string resolve_url(std::string_view base, std::string_view ref);

}  // namespace feedpipe
