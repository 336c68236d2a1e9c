#!/usr/bin/env bash
# Benchmark of the teacher stage against the local teacher (examples/teacher):
#   1. zero latency: requests/s the stage sustains on 2 cores (goal >= 5,000/s)
#   2. 100 ms latency, concurrency 256: achieved rate as a share of the
#      2,560/s bound (goal >= 95%)
#   tests/bench/teacher_throughput.sh [PROMPTS]     (from the repository root)
# Each run uses a fresh state folder (cache: false), so every prompt is a paid call.
set -euo pipefail
cd "$(dirname "$0")/../.."
prompts=${1:-20000}
work=${BENCH_DIR:-/tmp/distilld-bench}/teacher
.ci/deps
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build -j2 daemon/distilld examples/teacher/distill-teacher plugins/prompts/prompts.so \
  plugins/teacher/teacher.so plugins/jsonl/jsonl.so >/dev/null
rm -rf "$work"
mkdir -p "$work"
python3 -c "
import json
with open('$work/prompts.jsonl', 'w') as f:
    for i in range($prompts):
        f.write(json.dumps({'prompt': 'Spell %d digit by digit.' % (i * 7919 % 10000000)}) + '\n')
"

# run_case NAME LATENCY_MS CONCURRENCY SERVER_THREADS
run_case() {
  local name=$1 latency=$2 concurrency=$3 threads=$4 dir="$work/$1"
  mkdir -p "$dir"
  build/examples/teacher/distill-teacher --port 0 --port-file "$dir/port" --threads "$threads" \
    --latency-ms "$latency" 2>"$dir/teacher.log" &
  local server=$!
  for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
  cat > "$dir/pipeline.yaml" <<YAML
name: teacher-bench
engine: {threads: 2, batch_size: 256, max_inflight_batches: 32, checkpoint_every_records: 20000}
source: {plugin: prompts, path: $work/prompts.jsonl}
stages:
  - {plugin: teacher, base_url: "http://127.0.0.1:$(cat "$dir/port")/v1", model: teacher-small,
     concurrency: $concurrency, cache: false}
sinks: [{plugin: jsonl, dir: out, rejects: none}]
YAML
  local start end
  start=$(date +%s.%N)
  build/daemon/distilld run -q "$dir/pipeline.yaml" >"$dir/summary.txt"
  end=$(date +%s.%N)
  kill "$server"
  wait "$server" 2>/dev/null || true
  awk -v n="$prompts" -v s="$start" -v e="$end" -v name="$name" -v c="$concurrency" -v l="$latency" 'BEGIN {
    rate = n / (e - s);
    printf "%-34s %8.2f s %10.0f requests/s", name, e - s, rate;
    if (l > 0) printf "   %.1f%% of the %d/s bound", 100 * rate / (c * 1000 / l), c * 1000 / l;
    printf "\n" }'
  grep -q "teacher_answers *[0-9,]*$" "$dir/summary.txt" || { cat "$dir/summary.txt"; exit 1; }
}

echo "$prompts prompts, every one a paid call"
run_case "zero latency, concurrency 64" 0 64 96
run_case "100 ms latency, concurrency 256" 100 256 300
