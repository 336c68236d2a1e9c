#!/usr/bin/env bash
# The long crash loop: SIGKILLs prompts -> teacher (with faults) -> exact ->
# minhash -> policy -> jsonl and student sinks at seeded random moments,
# KILLS times in all (default 100), resuming after each kill, and compares
# every run it completes with an uninterrupted one: kept records, rejects,
# every step's counters and the student's weights must be identical, and a
# run may repeat no more paid teacher calls than the 16 in flight at each kill. CI runs the same test
# with 5 kills (meson test crash_loop).
#   tests/reliability/crash_loop.sh [KILLS] [SEED]     (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
.ci/deps
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" -j2 >/dev/null
CRASH_LOOP_KILLS=${1:-100} CRASH_LOOP_SEED=${2:-2026} \
  meson test -C "$build" --no-rebuild crash_loop --verbose --timeout-multiplier 0 2>&1 |
  grep -E "crash loop:|Failure|differs|OK|FAIL" || true
grep -q '"result": "OK"' "$build/meson-logs/testlog.json"
