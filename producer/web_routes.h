#pragma once
// The browser page (web/, compiled into the binary): GET / to submit feeds and GET /batches/{id}
// to watch one batch live. Served by the producer, so that behind one front the page, the API
// and the streams share an origin.
#include <httplib.h>

namespace feedpipe::producer {

void register_web_routes(httplib::Server& server);

}  // namespace feedpipe::producer
