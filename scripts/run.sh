#!/usr/bin/env bash
# The user's main command: install what is missing, build, and start `feedpipe standalone`
# (embedded Kafka broker, SQLite file ./feedpipe.db, web page on http://127.0.0.1:8080).
# Arguments are passed to `feedpipe standalone` (see `build/feedpipe standalone --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/feedpipe standalone "$@"
