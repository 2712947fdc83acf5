#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) and runs each for SECONDS
# (default 60), bounded in memory and per-input time. Fails on any crash, hang, leak or broken
# invariant, and names the input that caused it (BUILD_DIR/artifacts/TARGET/).
#
#   scripts/fuzz.sh [SECONDS]
#   BUILD_DIR        build directory (default build-fuzz); its corpus/ keeps what each run found
#   FUZZ_TARGETS     which targets (default: all four)
#   FUZZ_RSS_LIMIT_MB, FUZZ_TIMEOUT_S, FUZZ_MAX_LEN   -rss_limit_mb (2048), -timeout (10), -max_len
#                    of the feed parser (65536; the request targets use libFuzzer's default)
#
# Seeds: fuzz/seeds/TARGET/ (and the dictionary fuzz/dicts/TARGET.dict when there is one), and for the feed parser the shared corpus ../shared/corpus/
# (feedparser/ and wild/) when it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
dir="${BUILD_DIR:-build-fuzz}"
targets=(${FUZZ_TARGETS:-fuzz_feed_parser fuzz_batch_request fuzz_request_head fuzz_outcome_message fuzz_event_message})
rss_limit="${FUZZ_RSS_LIMIT_MB:-2048}"
timeout_s="${FUZZ_TIMEOUT_S:-10}"
max_len="${FUZZ_MAX_LEN:-65536}"

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (scripts/install-deps.sh --test installs it)" >&2; exit 1; }
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFEEDPIPE_FUZZ=ON -DFEEDPIPE_BUILD_TESTS=OFF -DFEEDPIPE_WERROR=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"

shared=../shared/corpus
status=0
for target in "${targets[@]}"; do
  corpus="$dir/corpus/$target" artifacts="$dir/artifacts/$target/" log="$dir/$target.log"
  mkdir -p "$corpus" "$artifacts"
  seeds=(fuzz/seeds/"${target#fuzz_}")
  extra=()
  dict="fuzz/dicts/${target#fuzz_}.dict"
  [[ -f "$dict" ]] && extra+=(-dict="$dict")
  if [[ "$target" == fuzz_feed_parser ]]; then
    extra+=(-max_len="$max_len")
    for sub in feedparser wild; do
      if [[ -d "$shared/$sub" ]]; then seeds+=("$shared/$sub"); else echo "fuzz.sh: $shared/$sub absent, not used as seeds"; fi
    done
  fi
  printf '== %s for %ss\n' "$target" "$seconds"
  if "$dir/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb="$rss_limit" -timeout="$timeout_s" \
      -print_final_stats=1 -artifact_prefix="$artifacts" "${extra[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "   ok: ${execs:-?} inputs, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files"
  else
    status=1
    echo "   FAILED: see $log; the input is in $artifacts" >&2
    grep -m1 -A30 -E '^==[0-9]+==ERROR|deadly signal|ERROR: libFuzzer|SUMMARY' "$log" >&2 || tail -40 "$log" >&2
  fi
done
exit "$status"
