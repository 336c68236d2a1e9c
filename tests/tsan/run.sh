#!/usr/bin/env bash
# ThreadSanitizer pass (issue 12): sets up and builds build-tsan (GCC,
# -Db_sanitize=thread) when needed, builds only what the suite 'tsan'
# runs (`ninja tsan_tests`: the teacher client, the store, the daemon and
# its test, the plugins its pipelines use), and runs that suite with the
# suppressions of tests/tsan/suppressions.txt. Every process writes its
# reports to build-tsan/tsan-reports/report.<pid> (the daemons' workers
# and the local teacher too, whose stderr no test reads); the pass fails
# when a test fails or any report was written, and prints each report's
# summary line.
#   tests/tsan/run.sh [MESON TEST ARGS...]   e.g. tsan_store
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${TSAN_BUILD_DIR:-build-tsan}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Db_sanitize=thread -Db_lundef=false -Dbenchmarks=false \
    >"$build.setup.log" 2>&1 || { cat "$build.setup.log"; exit 1; }
fi
rm -f "$build/meson-logs/testlog.json"  # a build that fails leaves no results of an earlier pass
echo "== $build: building"
started=$SECONDS
ninja -C "$build" -j "${JOBS:-2}" tsan_tests >"$build.build.log" 2>&1 || { tail -n 60 "$build.build.log"; exit 1; }
echo "== $build: built in $((SECONDS - started)) s"

reports="$PWD/$build/tsan-reports"
rm -rf "$reports"
mkdir -p "$reports"
# history_size=7: the longest history, so that the earlier access of a
# report keeps its stack (a TBB worker's frames that the suppressions match
# are otherwise lost in a long run).
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan/suppressions.txt:log_path=$reports/report:exitcode=66:second_deadlock_stack=1:history_size=7${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
echo "== $build: testing"
started=$SECONDS
meson test -C "$build" --no-rebuild --suite tsan --num-processes "${JOBS:-2}" --print-errorlogs "$@" |
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Timeout|Skipped):"
tests_status=${PIPESTATUS[0]}

count=$(cat "$reports"/report.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true)
echo "== $build: tested in $((SECONDS - started)) s, $count ThreadSanitizer reports"
if [ "$count" -gt 0 ]; then
  grep -H '^SUMMARY: ThreadSanitizer' "$reports"/report.* | sort | uniq -c | sort -rn | head -n 30
  echo "full reports in $reports"
fi
[ "$tests_status" -eq 0 ] && [ "$count" -eq 0 ]
