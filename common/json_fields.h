#pragma once
// The top level of a JSON object as its keys and the raw text of their values, without building a
// tree: for messages read at every event, where a tree cost more than everything else done with
// them. Only what the split needs is checked (the structure, not the values' contents).
#include <functional>
#include <string_view>

namespace feedpipe {

// Calls `field(key, raw_value)` for each member of the object `text`, in order, and returns true,
// unless `text` is not a single object, a key holds an escape (the key is then not its raw text),
// or `field` returns false: then false, after the fields seen so far.
bool split_json_object(std::string_view text,
                       const std::function<bool(std::string_view key, std::string_view raw_value)>& field);

}  // namespace feedpipe
