#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install what is missing, build, and run
# unit and integration tests, then the same tests under AddressSanitizer/UndefinedBehaviorSanitizer,
# the concurrent parts under ThreadSanitizer, a bounded libFuzzer run (scripts/fuzz.sh), and the
# compose file check. Set FEEDPIPE_QUICK=1 to skip the sanitizer builds and the fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$*" $(( $(date +%s) - started )); }

step "dependencies"
scripts/install-deps.sh --test

step "browser test dependencies (playwright-core, pinned in tests/e2e/package-lock.json)"
npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error

step "build (warnings are errors)"
# Line tables only (-g1): enough for backtraces and profiles, and it builds in two thirds of the
# time that full debug information takes.
BUILD_DIR=build scripts/build.sh -DFEEDPIPE_WERROR=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"

step "tests"
ctest --test-dir build --output-on-failure -j2 --timeout 300

if [[ "${FEEDPIPE_QUICK:-0}" != "1" ]]; then
  step "tests under ASan + UBSan"
  BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DFEEDPIPE_WERROR=ON -DFEEDPIPE_SANITIZE=address,undefined
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS=suppressions="$PWD/tests/lsan.supp"
  # The unit tests run as two gtest shards, one process each: under ASan a process takes about a
  # second to start and to check for leaks at exit, which one process per test (ctest) paid 329 times.
  for shard in 0 1; do
    (cd build-asan/tests && GTEST_TOTAL_SHARDS=2 GTEST_SHARD_INDEX=$shard timeout 900 ./unit_tests \
       >"unit_shard_$shard.log" 2>&1) &
  done
  unit_failed=0
  for shard in 0 1; do wait -n || unit_failed=1; done
  for shard in 0 1; do
    if [[ $unit_failed == 1 ]]; then cat "build-asan/tests/unit_shard_$shard.log"; else tail -n 3 "build-asan/tests/unit_shard_$shard.log"; fi
  done
  [[ $unit_failed == 0 ]] || { echo "unit tests failed under ASan + UBSan" >&2; exit 1; }
  # Integration tests, but those of tests/asan_skip.txt (timing and deployment shape, not code).
  skip=$(grep -v -e '^#' -e '^$' tests/asan_skip.txt)
  integration_names=$(ctest --test-dir build-asan -N -L integration | sed -n 's/^ *Test *#[0-9]*: //p')
  while read -r name; do
    if ! grep -qxF "$name" <<<"$integration_names"; then
      echo "tests/asan_skip.txt: no integration test is named $name" >&2
      exit 1
    fi
  done <<<"$skip"
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 600 -L integration \
    -E "^($(sed 's/\./\\./g' <<<"$skip" | paste -sd'|'))\$"

  step "concurrency under TSan"
  # The project's own concurrent parts (tests/tsan_tests.txt): event hub, offsets, metrics.
  # Suites that drive librdkafka's mock cluster crash inside the uninstrumented library under
  # TSan (SEGV in a librdkafka thread), so they run under ASan only.
  # Only the files of those tests are built (tsan_unit_tests in tests/CMakeLists.txt).
  BUILD_DIR=build-tsan BUILD_TYPE=Debug BUILD_TARGET=tsan_unit_tests \
    scripts/build.sh -DFEEDPIPE_WERROR=ON -DFEEDPIPE_SANITIZE=thread
  export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1"
  # Lines starting with "-" leave a test out: the two slow-reader tests push megabytes of events
  # through one stream and took 200 and 264 s under TSan (plain and ASan runs keep them).
  include=$(grep -v '^-' tests/tsan_tests.txt | paste -sd:)
  exclude=$(grep '^-' tests/tsan_tests.txt | cut -c2- | paste -sd:)
  while read -r pattern; do
    if ! build-tsan/tests/tsan_unit_tests --gtest_list_tests --gtest_filter="$pattern" | grep -q '^  '; then
      echo "tests/tsan_tests.txt: no test matches $pattern: add its file to TSAN_UNIT_SRC in tests/CMakeLists.txt" >&2
      exit 1
    fi
  done < <(grep -v '^-' tests/tsan_tests.txt; grep '^-' tests/tsan_tests.txt | cut -c2-)
  timeout 900 build-tsan/tests/tsan_unit_tests --gtest_filter="$include-$exclude"

  step "fuzzing the feed parser and the request parsers (libFuzzer, ASan + UBSan; 30 s each)"
  # A bounded run: about 2.5 min on 2 cores, build included. Fuzz longer with scripts/fuzz.sh 600.
  BUILD_DIR=build-fuzz timeout 600 scripts/fuzz.sh "${FEEDPIPE_FUZZ_SECONDS:-30}"
fi

if [[ -f compose.yaml ]]; then
  step "compose file"
  # Valid, and each role gets the time its shutdown may take before Docker kills it.
  docker-compose -f compose.yaml config | python3 scripts/check_compose_stop.py
fi

step "all tests passed"
