#!/usr/bin/env bash
# Benchmark of the daemon's control plane, in one command:
#  1. status() latency (p50, p99, max) with 8 clients polling, each on its
#     own connection, every 10 ms (800 calls/s in all), while a pipeline
#     runs (goal: p99 < 2 ms);
#  2. that pipeline's records/s with and without the 8 pollers (goal: less
#     than 5% slower), each the best of $ROUNDS runs (default 3);
#  3. the most status() calls/s 8 unpaced clients get while it runs;
#  4. the daemon's start-up time, from exec to its first answered call,
#     with 20 stored pipelines.
# The pipeline is jsonl -> exact_dedupe -> minhash_dedupe -> policy ->
# jsonl over a generated corpus of 1 KB responses (default 1,000,000 lines).
#   tests/bench/daemon_control.sh [RECORDS]     (from the repository root)
# Builds into $BUILD_DIR (default build/) when needed; works under
# $BENCH_DIR (default /tmp/distilld-bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
records=${1:-1000000}
rounds=${ROUNDS:-3}
build=${BUILD_DIR:-build}
work=${BENCH_DIR:-/tmp/distilld-bench}/daemon
.ci/deps
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" -j2 daemon/distilld daemon/distillctl tests/make_corpus tests/daemon_status_bench \
  plugins/jsonl/jsonl.so plugins/exact_dedupe/exact_dedupe.so plugins/minhash_dedupe/minhash_dedupe.so \
  plugins/policy/policy.so >/dev/null
distilld="$PWD/$build/daemon/distilld"
distillctl="$PWD/$build/daemon/distillctl"
poller="$PWD/$build/tests/daemon_status_bench"
state="$work/state"

rm -rf "$state" "$work/project"
mkdir -p "$work/project"
corpus="$work/corpus-$records.jsonl"
[ -f "$corpus" ] || "$build/tests/make_corpus" "$corpus" --records "$records" --response-bytes 1024 --messages-only >/dev/null
cat > "$work/project/bench.yaml" <<YAML
name: bench
engine: {threads: 2, batch_size: 512, checkpoint_every_records: 50000}
source: {plugin: jsonl, path: $corpus}
stages: [{plugin: exact_dedupe}, {plugin: minhash_dedupe}, {plugin: policy}]
sinks: [{plugin: jsonl, dir: out, rejects: none}]
YAML

ctl() { "$distillctl" --state "$state" "$@"; }
daemon=""
trap '[ -z "$daemon" ] || kill -KILL "$daemon" 2>/dev/null || true' EXIT
start_daemon() {
  "$distilld" serve --state "$state" --threads 2 2>>"$work/serve.log" &
  daemon=$!
  until ctl health >/dev/null 2>&1; do sleep 0.005; done
}
stop_daemon() {
  kill -TERM "$daemon"
  wait "$daemon" || true
  daemon=""
}
records_per_s() { ctl -o json status bench | python3 -c "import json,sys; print(json.load(sys.stdin)['records_per_s'])"; }

start_daemon
ctl submit "$work/project/bench.yaml" >/dev/null
quiet=0
busy=0
latency=""
for round in $(seq "$rounds"); do
  flag=""
  [ "$round" -gt 1 ] && flag="--new-run"
  ctl start bench $flag >/dev/null
  ctl status bench --watch >/dev/null
  quiet=$(python3 -c "print(max($quiet, $(records_per_s)))")
  ctl start bench --new-run >/dev/null
  line=$("$poller" --socket "$state/control.sock" --pipeline bench --clients 8 --interval-ms 10)
  ctl status bench --watch >/dev/null
  rate=$(records_per_s)
  if python3 -c "import sys; sys.exit(0 if $rate > $busy else 1)"; then
    busy=$rate
    latency=$line
  fi
done
ctl start bench --new-run >/dev/null
sleep 0.5
flat_out=$("$poller" --socket "$state/control.sock" --pipeline bench --clients 8 --interval-ms 0 --seconds 2)
ctl status bench --watch >/dev/null
stop_daemon

for i in $(seq 20); do
  sed "s/^name: bench/name: stored-$i/" "$work/project/bench.yaml" > "$work/project/stored-$i.yaml"
done
start_daemon
for i in $(seq 20); do ctl submit "$work/project/stored-$i.yaml" >/dev/null; done
stop_daemon
best_start=999
for round in $(seq "$rounds"); do
  began=$(date +%s.%N)
  start_daemon
  ended=$(date +%s.%N)
  stop_daemon
  best_start=$(python3 -c "print(min($best_start, ($ended - $began) * 1000))")
done

echo "status() every 10 ms from 8 clients while the pipeline runs: $latency"
echo "status() as fast as 8 clients can call, while the pipeline runs: $flat_out"
python3 - "$quiet" "$busy" "$best_start" "$records" <<'PY'
import sys
quiet, busy, start, records = map(float, sys.argv[1:])
print(f"pipeline of {int(records)} records: {quiet:,.0f} records/s alone, {busy:,.0f} records/s with 8 pollers "
      f"({(quiet - busy) / quiet * 100:+.1f}% slower)")
print(f"daemon start-up to its first answer with 20 stored pipelines: {start:.0f} ms (best of the rounds)")
PY
rm -rf "$state" "$work/project"
