#pragma once
// The settings each command declares, grouped by the part they configure, and their conversion
// into the roles' settings structs. Every setting is a flag and a FEEDPIPE_* variable.
#include "broadcaster/broadcaster.h"
#include "broadcaster/stream_server.h"
#include "commands/signals.h"
#include "common/config.h"
#include "common/http.h"
#include "common/kafka.h"
#include "common/retention.h"
#include "consumer/callbacks/callback_settings.h"
#include "consumer/worker/consumer.h"
#include "consumer/worker/recorder.h"
#include "producer/producer.h"

namespace feedpipe::commands {

// --db (default `default_db`; empty: no database unless given), --brokers, logging, Kafka tuning.
void add_common_settings(Settings& s, const std::string& default_db = "./feedpipe.db");
void add_http_settings(Settings& s, const std::string& default_listen);
void add_producer_settings(Settings& s);
void add_consumer_settings(Settings& s);
void add_broadcaster_settings(Settings& s);
void add_recorder_settings(Settings& s);
// --allow-private-networks and --allow-networks: the SSRF guard's exceptions, for feed fetches
// and callbacks (add_consumer_settings includes them).
void add_outbound_address_settings(Settings& s);
// --callback-*: the callback sender of the processes that record batch completions.
void add_callback_settings(Settings& s);
// The `broadcaster` command's alternative to --db: --api URL and its timeouts.
void add_broadcaster_api_settings(Settings& s);
void add_retention_settings(Settings& s);   // the pruner of the producer and standalone
// --drain-timeout-ms and --shutdown-grace-ms, which every long-running role takes; `drain` and
// `grace` say what each bounds in that role. Whatever Kafka does, the process ends within their
// sum + 5 s of SIGTERM (commands/signals.h).
void add_shutdown_settings(Settings& s, const std::string& drain, const std::string& grace);
ShutdownLimits shutdown_limits(const Settings& s);
// Access settings every serving command shares (stream token secret, CORS, trusted proxies,
// rate-limiter memory); add_producer_settings and add_broadcaster_settings add their own.
void add_access_settings(Settings& s);

// Parses and sets up logging; false when --help was printed.
bool parse_settings(Settings& s, int argc, char** argv);

KafkaSettings kafka_settings(const Settings& s);
HttpServerSettings http_settings(const Settings& s);
producer::ProducerSettings producer_settings(const Settings& s, const KafkaSettings& kafka);
consumer::ConsumerSettings consumer_settings(const Settings& s, const KafkaSettings& kafka);
consumer::RecorderSettings recorder_settings(const Settings& s, const KafkaSettings& kafka);
RetentionSettings retention_settings(const Settings& s);
// The callback sender's settings (add_callback_settings and the address rules); throws
// ConfigError for a value out of range.
callbacks::CallbackSettings callback_settings(const Settings& s);
BroadcasterSettings broadcaster_settings(const Settings& s, const KafkaSettings& kafka);
// broadcaster_settings plus --api and its timeouts (add_broadcaster_api_settings); throws
// ConfigError unless exactly one of --db and --api is set.
BroadcasterSettings broadcaster_api_settings(const Settings& s, const KafkaSettings& kafka);
// The event-loop front's settings (--max-streams, --stream-buffer-bytes, heartbeat, retry, body cap).
StreamServerSettings stream_server_settings(const Settings& s, const BroadcasterSettings& b);
// Reads the access settings (token file and list when `api_tokens`, origins, proxy addresses)
// so that a mistake stops the command at once, before it opens the database or the broker.
void check_access_settings(const Settings& s, bool api_tokens);
// --allow-networks: the blocks the SSRF guard lets through (empty: none); throws ConfigError for
// an item that is not an address or CIDR block. Fetches and callbacks use it.
IpNetworks allowed_networks(const Settings& s);
// --cors-origins as a policy (off when empty); throws ConfigError for a malformed origin.
CorsPolicy cors_policy(const Settings& s);

}  // namespace feedpipe::commands
