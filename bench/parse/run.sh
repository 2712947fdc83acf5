#!/usr/bin/env bash
# Parse benchmark: feedpipe's parse_feed(), bare pugixml load_buffer(), Python feedparser and
# (when Debian's golang-go and golang-github-mmcdole-gofeed-dev are installed) Go's gofeed on
# the same files in the same run, over ../shared/corpus/wild and 500 generated feeds
# (gen_feeds.py --count 500 --items 10). Median of RUNS (5) runs each, in CPU time of the
# process (steadier than wall time on a shared machine); MB = 10^6 bytes.
#
#   bench/parse/run.sh [BUILD_DIR]      (BUILD_DIR holds bench/parse/parse_bench; default: build)
#
# Build first: cmake --build BUILD_DIR --target parse_bench
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build}
shared=${FEEDPIPE_SHARED_DIR:-$repo/../shared}
runs=${RUNS:-5}
python=${PYTHON:-/usr/bin/python3}
bench=$build/bench/parse/parse_bench

if [[ ! -d $shared/corpus/wild ]]; then
  echo "parse benchmark skipped: $shared/corpus is missing"
  exit 0
fi
if [[ ! -x $bench ]]; then
  echo "parse_bench not built: cmake --build $build --target parse_bench" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" "$shared/corpus/gen_feeds.py" --count 500 --items 10 --out "$tmp/gen" >/dev/null

sets=("wild=$shared/corpus/wild" "gen500=$tmp/gen")
gofeed_bench=
if command -v go >/dev/null && [[ -d /usr/share/gocode/src/github.com/mmcdole/gofeed ]]; then
  # Debian's packaged sources (golang-github-mmcdole-gofeed-dev), no module download
  if GOCACHE=$tmp/gocache GO111MODULE=off GOPATH=/usr/share/gocode \
      go build -o "$tmp/gofeed_bench" "$repo/bench/parse/gofeed/main.go"; then
    gofeed_bench=$tmp/gofeed_bench
  fi
else
  echo "gofeed skipped (apt-get install golang-go golang-github-mmcdole-gofeed-dev)" >&2
fi
{
  "$bench" --runs "$runs" "${sets[@]}"
  if "$python" -c 'import feedparser' 2>/dev/null; then
    "$python" "$repo/bench/parse/feedparser_bench.py" --runs "$runs" "${sets[@]}"
  else
    echo "feedparser skipped (apt-get install python3-feedparser)" >&2
  fi
  if [[ -n $gofeed_bench ]]; then "$gofeed_bench" -runs "$runs" "${sets[@]}"; fi
} | tee "$tmp/results" | grep -v '^median' || true

# One row per corpus and parser; the last column is feedpipe's speed over that parser's.
awk '
  $1 == "median" {
    if (!(($2) in seen)) { seen[$2] = 1; corpora[++nc] = $2 }
    if (!(($3) in pseen)) { pseen[$3] = 1; parsers[++np] = $3 }
    mbs[$2, $3] = $7; fps[$2, $3] = $8; files[$2] = $4; bytes[$2] = $5
  }
  END {
    printf "%-8s %6s %7s  %-11s %10s %10s  %s\n", "corpus", "files", "MB", "parser", "MB/s", "files/s", "feedpipe/parser"
    for (i = 1; i <= nc; ++i) {
      c = corpora[i]
      for (j = 1; j <= np; ++j) {
        p = parsers[j]
        if (!((c, p) in mbs)) continue
        printf "%-8s %6d %7.2f  %-11s %10.2f %10.1f  %.3gx\n", c, files[c], bytes[c] / 1e6, p, mbs[c, p], fps[c, p],
          (mbs[c, p] > 0 ? mbs[c, "feedpipe"] / mbs[c, p] : 0)
      }
    }
  }' "$tmp/results"
