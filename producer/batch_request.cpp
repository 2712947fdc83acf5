#include "producer/batch_request.h"

#include <nlohmann/json.hpp>

#include <optional>

#include "common/url.h"

namespace feedpipe::producer {
namespace {

using json = nlohmann::json;

// Follows the document's structure with a depth counter and keeps only the strings of the
// top-level "feeds" array, up to the limit; everything else is counted or skipped.
class BatchRequestReader : public nlohmann::json_sax<json> {
 public:
  explicit BatchRequestReader(const BatchRequestLimits& limits) : limits_(limits) {}

  bool null() override {
    if (depth_ == 1 && next_is_callback_) {  // "callback_url": null is no callback
      next_is_callback_ = false;
      callback_ = CallbackField::absent;
      request_.callback_url.clear();
      return true;
    }
    return value();
  }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool string(string_t& s) override {
    if (in_feeds_element()) {
      ++feeds_count_;
      if (request_.feeds.size() < limits_.max_feeds) request_.feeds.push_back(std::move(s));
      return true;
    }
    if (depth_ == 1 && next_is_callback_) {
      next_is_callback_ = false;
      callback_ = CallbackField::given;
      callback_too_long_ = s.size() > limits_.max_callback_url_bytes;
      request_.callback_url = callback_too_long_ ? std::string() : std::move(s);
      return true;
    }
    return value();
  }

  bool start_object(std::size_t) override {
    if (depth_ == 0) root_is_object_ = true;
    if (!value()) return false;
    return enter();
  }
  bool key(string_t& k) override {
    next_is_feeds_ = depth_ == 1 && k == "feeds";
    next_is_callback_ = depth_ == 1 && k == "callback_url";
    return true;
  }
  bool end_object() override { return leave(); }

  bool start_array(std::size_t) override {
    if (depth_ == 1 && next_is_feeds_) {
      next_is_feeds_ = false;
      feeds_seen_ = feeds_is_array_ = true;  // a repeated "feeds" key: the last one counts
      feeds_count_ = 0;
      first_non_string_.reset();
      request_.feeds.clear();
      in_feeds_ = true;
      return enter();
    }
    if (!value()) return false;
    return enter();
  }
  bool end_array() override {
    if (depth_ == 2 && in_feeds_) in_feeds_ = false;
    return leave();
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

  bool too_deep() const { return too_deep_; }

  std::variant<BatchRequest, Refusal> result() {
    if (!root_is_object_)
      return Refusal{400, "invalid_request", "the request body must be a JSON object like {\"feeds\":[\"https://…\"]}"};
    if (!feeds_seen_) return Refusal{400, "invalid_request", "the field \"feeds\" is missing"};
    if (!feeds_is_array_) return Refusal{400, "invalid_request", "\"feeds\" must be an array of URL strings"};
    if (feeds_count_ == 0) return Refusal{422, "empty_batch", "\"feeds\" is empty: give at least one feed URL"};
    if (feeds_count_ > limits_.max_feeds)
      return Refusal{413, "batch_too_large",
                     "the batch has " + std::to_string(feeds_count_) + " feeds; the limit is " +
                         std::to_string(limits_.max_feeds)};
    if (first_non_string_)
      return Refusal{400, "invalid_request", "feeds[" + std::to_string(*first_non_string_) + "] is not a string"};
    if (auto refusal = callback_refusal()) return *refusal;
    return std::move(request_);
  }

 private:
  bool in_feeds_element() const { return in_feeds_ && depth_ == 2; }

  std::optional<Refusal> callback_refusal() const {
    auto refuse = [](const std::string& why) {
      return Refusal{422, "invalid_callback_url",
                     "\"callback_url\" must be an absolute http(s) URL such as \"https://example.com/hooks/feedpipe\": " + why};
    };
    switch (callback_) {
      case CallbackField::absent: return std::nullopt;
      case CallbackField::not_a_string: return refuse("it is not a string");
      case CallbackField::given: break;
    }
    if (callback_too_long_)
      return refuse("it is longer than " + std::to_string(limits_.max_callback_url_bytes) + " bytes");
    std::string why;
    if (!normalize_feed_url(request_.callback_url, &why)) return refuse(why);
    return std::nullopt;
  }

  // A value other than a string of "feeds": notes a non-string element of "feeds", or a
  // non-array value of the "feeds" key.
  bool value() {
    if (in_feeds_element()) {
      if (!first_non_string_) first_non_string_ = feeds_count_;
      ++feeds_count_;
    } else if (depth_ == 1 && next_is_callback_) {
      next_is_callback_ = false;
      callback_ = CallbackField::not_a_string;
      request_.callback_url.clear();
    } else if (depth_ == 1 && next_is_feeds_) {
      next_is_feeds_ = false;
      feeds_seen_ = true;
      feeds_is_array_ = false;
      request_.feeds.clear();
    }
    return true;
  }
  bool enter() {
    if (++depth_ > limits_.max_depth) {
      too_deep_ = true;
      return false;
    }
    return true;
  }
  bool leave() {
    --depth_;
    return true;
  }

  const BatchRequestLimits& limits_;
  BatchRequest request_;
  int depth_ = 0;
  bool root_is_object_ = false, next_is_feeds_ = false, feeds_seen_ = false, feeds_is_array_ = false;
  bool in_feeds_ = false, too_deep_ = false;
  enum class CallbackField { absent, given, not_a_string };
  CallbackField callback_ = CallbackField::absent;
  bool next_is_callback_ = false, callback_too_long_ = false;
  size_t feeds_count_ = 0;
  std::optional<size_t> first_non_string_;
};

}  // namespace

std::variant<BatchRequest, Refusal> parse_batch_request(const std::string& body, const BatchRequestLimits& limits) {
  BatchRequestReader reader(limits);
  bool ok = false;
  try {
    ok = json::sax_parse(body, &reader);
  } catch (const std::exception&) {
    ok = false;  // sax_parse reports through parse_error(); this is only belt and braces
  }
  if (reader.too_deep())
    return Refusal{400, "invalid_request",
                   "the request body nests JSON deeper than " + std::to_string(limits.max_depth) +
                       " levels; a batch is {\"feeds\":[\"https://…\"]}"};
  if (!ok) return Refusal{400, "malformed_json", "the request body is not valid JSON"};
  return reader.result();
}

}  // namespace feedpipe::producer
