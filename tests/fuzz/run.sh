#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS (default 60), or only the TARGETs
# named, with a memory limit, a per-input timeout and its dictionary, from
# its seed corpus (tests/fuzz/corpus/<target>, replayed first) plus what
# earlier runs found (build-fuzz/fuzz-corpus/<target>). Sets up and builds
# build-fuzz (clang, ASan+UBSan, -Dfuzzers=true) when needed. Prints one
# line per target with its executions and coverage (cov: edges, ft:
# features, from libFuzzer's final stats); exits non-zero on any crash,
# leak, timeout or memory blow-up, whose input is saved in
# build-fuzz/fuzz-artifacts/. FUZZ_SANITIZE=undefined (with another
# FUZZ_BUILD_DIR) builds without ASan, several times faster, for long runs
# of the slow targets; leaks and memory errors are then the ASan runs' job.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift $(($# > 0 ? 1 : 0))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pipeline_yaml jsonl_import teacher_response policy_rules record_json rpc_frames)
build=${FUZZ_BUILD_DIR:-build-fuzz}
sanitize=${FUZZ_SANITIZE:-address,undefined}

# Without ASan, nothing exports UBSan's runtime to the plugins that
# pipeline_yaml loads: -rdynamic does.
export_runtime=()
[[ $sanitize == *address* ]] || export_runtime=(-Dcpp_link_args=-rdynamic)
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$build" -Dfuzzers=true -Dtests=false -Dbenchmarks=false \
    -Db_sanitize="$sanitize" -Db_lundef=false "${export_runtime[@]}" >"$build.setup.log" 2>&1 ||
    { cat "$build.setup.log"; exit 1; }
fi
ninja -C "$build" -j "${JOBS:-2}" fuzzers >"$build.build.log" 2>&1 || { tail -n 60 "$build.build.log"; exit 1; }

# intercept_tls_get_addr=0: see .ci/run (LeakSanitizer's tracer crash).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:intercept_tls_get_addr=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for target in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$target"
  artifacts="$build/fuzz-artifacts"
  log="$build/fuzz-logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  # rpc_frames keeps a daemon's state across inputs, so its heap grows by
  # design: its leaks are checked at exit, not after every input.
  per_input_leaks=1
  [ "$target" = rpc_frames ] && per_input_leaks=0
  "$build/tests/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -detect_leaks="$per_input_leaks" \
    -dict="tests/fuzz/$target.dict" -artifact_prefix="$artifacts/$target-" -print_final_stats=1 \
    "$corpus" "tests/fuzz/corpus/$target" >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  coverage=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -n 1)
  if [ "$status" -eq 0 ]; then
    echo "$target: ok, ${runs:-0} executions in ${seconds} s, ${coverage:-no coverage line}"
  else
    failed=$((failed + 1))
    echo "$target: FAILED (exit $status) after ${runs:-?} executions, ${coverage:-no coverage line}; log $log"
    grep -E '^==[0-9]+==ERROR|^SUMMARY|fuzz property violated|Test unit written to' "$log" | head -n 5
  fi
done
[ "$failed" -eq 0 ]
