#include "common/url.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace feedpipe {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlString {
  char* s = nullptr;
  ~CurlString() { curl_free(s); }
};

std::optional<std::string> get_part(CURLU* u, CURLUPart part, unsigned flags = 0) {
  CurlString out;
  if (curl_url_get(u, part, &out.s, flags) != CURLUE_OK || !out.s) return std::nullopt;
  return std::string(out.s);
}

bool has_scheme(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  if (!std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.begin() + colon, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

// One pass of normalize_feed_url; see there.
std::optional<std::string> normalize_once(std::string_view url, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<std::string> {
    if (error) *error = why;
    return std::nullopt;
  };
  std::string trimmed(url);
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  trimmed.erase(trimmed.begin(), std::find_if(trimmed.begin(), trimmed.end(), not_space));
  trimmed.erase(std::find_if(trimmed.rbegin(), trimmed.rend(), not_space).base(), trimmed.end());
  if (trimmed.empty()) return fail("empty URL");
  if (!has_scheme(trimmed)) return fail("not an absolute URL (no scheme)");
  std::string scheme_given = trimmed.substr(0, trimmed.find(':'));
  std::transform(scheme_given.begin(), scheme_given.end(), scheme_given.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (scheme_given != "http" && scheme_given != "https")
    return fail("unsupported scheme: only http and https URLs can be fetched");

  UrlHandle u(curl_url());
  if (curl_url_set(u.get(), CURLUPART_URL, trimmed.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return fail("malformed URL");
  auto scheme = get_part(u.get(), CURLUPART_SCHEME);
  if (!scheme || (*scheme != "http" && *scheme != "https"))
    return fail("unsupported scheme: only http and https URLs can be fetched");
  auto host = get_part(u.get(), CURLUPART_HOST);
  if (!host || host->empty()) return fail("URL has no host");
  // libcurl decodes %XX in a host and lets a '%' through; no resolvable host holds one, and
  // decoding it again would change the URL ("%%333" -> "%%33" -> "%3").
  if (host->find('%') != std::string::npos) return fail("malformed URL (a host cannot contain '%')");
  std::transform(host->begin(), host->end(), host->begin(),
                 [](unsigned char c) { return std::tolower(c); });

  std::string out = *scheme + "://";
  if (auto user = get_part(u.get(), CURLUPART_USER)) {
    out += *user;
    if (auto pw = get_part(u.get(), CURLUPART_PASSWORD)) out += ":" + *pw;
    out += "@";
  }
  out += *host;
  if (auto port = get_part(u.get(), CURLUPART_PORT)) {
    bool is_default = (*scheme == "http" && *port == "80") || (*scheme == "https" && *port == "443");
    if (!is_default) out += ":" + *port;
  }
  auto path = get_part(u.get(), CURLUPART_PATH);
  out += (path && !path->empty()) ? *path : "/";
  if (auto query = get_part(u.get(), CURLUPART_QUERY)) out += "?" + *query;
  return out;
}

}  // namespace

std::optional<std::string> normalize_feed_url(std::string_view url, std::string* error) {
  // libcurl decodes a host's %XX after it has canonicalized the host, so "http://%31/" comes out
  // as "http://1/", which the next pass reads as the IPv4 number 0.0.0.1. Passes repeat until
  // the URL stops changing, so that the stored URL is the same whichever spelling arrived.
  constexpr int kMaxPasses = 4;
  auto current = normalize_once(url, error);
  if (current && *current == url) return current;  // already in normal form, as most are
  for (int pass = 1; current && pass < kMaxPasses; ++pass) {
    auto next = normalize_once(*current, error);
    if (!next || *next == *current) return next;
    current = std::move(next);
  }
  if (error && current) *error = "malformed URL (its normal form does not settle)";
  return std::nullopt;
}

std::string resolve_url(std::string_view base, std::string_view ref) {
  if (base.empty() || has_scheme(ref)) return std::string(ref);
  UrlHandle u(curl_url());
  std::string b(base), r(ref);
  if (curl_url_set(u.get(), CURLUPART_URL, b.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return r;
  if (r.empty()) {
    // An empty reference is the base without its fragment.
    curl_url_set(u.get(), CURLUPART_FRAGMENT, nullptr, 0);
  } else if (curl_url_set(u.get(), CURLUPART_URL, r.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    return r;
  }
  return get_part(u.get(), CURLUPART_URL).value_or(r);
}

}  // namespace feedpipe
