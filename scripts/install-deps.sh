#!/usr/bin/env bash
# Installs the Debian 12 packages feedpipe needs to build, run and test, when any is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates curl python3
  librdkafka-dev libcpp-httplib-dev libcurl4-openssl-dev libpugixml-dev libsqlite3-dev
  libspdlog-dev nlohmann-json3-dev googletest libgtest-dev zlib1g-dev libssl-dev libjemalloc-dev
)
# Tools the test suite uses beyond the build: compose file check, Kafka CLI, browser, gdb (the
# browser tests print a hung feedpipe's threads), `ip` (network
# namespaces of many_hosts_test.cpp), and clang
# with its libFuzzer and sanitizer runtimes (scripts/fuzz.sh).
if [[ "${1:-}" == "--test" ]]; then
  packages+=(docker-compose kcat sqlite3 chromium clang libclang-rt-14-dev iproute2 gdb)
  command -v node >/dev/null || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "installing: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
