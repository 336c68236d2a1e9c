#!/usr/bin/env bash
# Benchmark of the minhash_dedupe stage, in one command:
#  1. throughput on a generated corpus of 1 KB responses (default 200,000
#     lines, ~230 MB): jsonl -> jsonl (baseline) and jsonl -> minhash_dedupe
#     -> jsonl, at 1 and 2 threads, with wall and CPU seconds, MB/s and
#     peak RSS; minhash_dedupe alone per core = MB / (its CPU seconds over
#     the baseline's at 1 thread);
#  2. peak RSS and state size of a 2-thread run at each larger size given
#     (e.g. 1000000 5000000: 1.2 GB and 5.8 GB of input, ~3 and ~16 min);
#  3. recall at true Jaccard >= 0.8 and precision of the drops on a planted
#     near-duplicate corpus (minhash_quality), for each `verify` mode.
#   tests/bench/minhash_bench.sh [RECORDS [RSS_RECORDS...]]   (from the repository root)
# Builds into $BUILD_DIR (default build/) when needed; writes its files
# under $BENCH_DIR (default /tmp/distilld-bench) and removes the outputs
# and state afterwards (corpora are kept for the next run).
set -euo pipefail
cd "$(dirname "$0")/../.."
records=${1:-200000}
shift $(($# > 0 ? 1 : 0))
work=${BENCH_DIR:-/tmp/distilld-bench}
build=${BUILD_DIR:-build}
.ci/deps
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" -j2 daemon/distilld tests/make_corpus tests/plugins/minhash_dedupe/minhash_quality \
  plugins/jsonl/jsonl.so plugins/minhash_dedupe/minhash_dedupe.so >/dev/null
distilld="$PWD/$build/daemon/distilld"
mkdir -p "$work"

corpus() {  # corpus RECORDS -> path of a 1 KB-response corpus (generated once)
  local file="$work/corpus-$1.jsonl"
  [ -f "$file" ] || "$build/tests/make_corpus" "$file" --records "$1" --response-bytes 1024 --messages-only >/dev/null
  echo "$file"
}

# run DIR THREADS CORPUS STAGES -> "wall_s cpu_s rss_kb" of `distilld run` on a fresh state
run() {
  local dir=$1 threads=$2 input=$3 stages=$4
  rm -rf "$dir"
  mkdir -p "$dir"
  cat > "$dir/pipeline.yaml" <<YAML
name: bench
state_dir: state
engine: {threads: $threads, batch_size: 256, max_inflight_batches: 16, checkpoint_every_records: 10000}
source: {plugin: jsonl, path: $input}
stages: [$stages]
sinks:
  - {plugin: jsonl, dir: out, rejects: all}
YAML
  /usr/bin/time -f "%e %U %S %M" "$distilld" run -q "$dir/pipeline.yaml" 2>&1 >/dev/null | tail -n1 |
    awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }'
}

mbps() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? m / s : 0) }'; }

input=$(corpus "$records")
mb=$(awk -v b="$(stat -c %s "$input")" 'BEGIN { printf "%.0f", b / 1e6 }')
echo "throughput: $input ($records lines, $mb MB)"
printf "%-42s %8s %8s %8s %9s\n" "pipeline" "wall s" "cpu s" "MB/s" "peak RSS"
declare -A cpu
for threads in 1 2; do
  for variant in baseline minhash; do
    stages=""
    [ "$variant" = minhash ] && stages="{plugin: minhash_dedupe}"
    read -r wall_s cpu_s rss_kb < <(run "$work/mh-$variant-$threads" "$threads" "$input" "$stages")
    cpu[$variant-$threads]=$cpu_s
    printf "%-42s %8s %8s %8s %8sM\n" "jsonl -> ${stages:+minhash_dedupe -> }jsonl, $threads thr" \
      "$wall_s" "$cpu_s" "$(mbps "$mb" "$wall_s")" "$((rss_kb / 1024))"
    rm -rf "$work/mh-$variant-$threads"
  done
done
extra=$(awk -v a="${cpu[minhash-1]}" -v b="${cpu[baseline-1]}" 'BEGIN { printf "%.2f", a - b }')
echo "minhash_dedupe alone: $(mbps "$mb" "$extra") MB/s per core ($extra CPU s over the baseline at 1 thread)"

for big in "$@"; do
  input=$(corpus "$big")
  mb=$(awk -v b="$(stat -c %s "$input")" 'BEGIN { printf "%.0f", b / 1e6 }')
  read -r wall_s cpu_s rss_kb < <(run "$work/mh-big" 2 "$input" "{plugin: minhash_dedupe}")
  echo "$big records ($mb MB), 2 threads: $wall_s s wall, $(mbps "$mb" "$wall_s") MB/s, peak RSS $((rss_kb / 1024)) MB," \
    "state $(du -sm "$work/mh-big/state" | cut -f1) MB"
  rm -rf "$work/mh-big"
done

planted="$work/planted.jsonl"
quality_args=(--records "${QUALITY_RECORDS:-20000}")
"$build/tests/plugins/minhash_dedupe/minhash_quality" "${quality_args[@]}" generate "$planted" >/dev/null
echo "quality: planted near-duplicates ($planted), true Jaccard of word 5-shingles >= 0.8"
for verify in exact estimate none; do
  run "$work/mh-quality" 2 "$planted" "{plugin: minhash_dedupe, text: response, verify: $verify}" >/dev/null
  echo "verify: $verify"
  "$build/tests/plugins/minhash_dedupe/minhash_quality" "${quality_args[@]}" score "$planted" "$work/mh-quality/out" |
    sed 's/^/    /'
  rm -rf "$work/mh-quality"
done
