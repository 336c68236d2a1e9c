#!/usr/bin/env bash
# Benchmark of the filtering stages (minhash_dedupe, policy) and of the
# full chain jsonl -> exact_dedupe -> minhash_dedupe -> policy -> jsonl,
# in one command:
#  1. on a generated corpus of 1 KB responses (default 500,000 lines,
#     577 MB): wall and CPU seconds, MB/s, MB/s per core (MB over all the
#     CPU seconds the process used, RocksDB's threads included) and peak
#     RSS of jsonl -> jsonl (the baseline), of each stage alone (1 thread)
#     and of the full chain (1 and 2 threads), each the best of $ROUNDS runs
#     (default 3; shared machines vary by 10-30%). A stage alone per core
#     is MB over its CPU seconds above the baseline's, and MB over the busy
#     seconds the run's summary gives its step (its own code only: the
#     RocksDB work its state causes is in the first figure, not this one);
#  2. peak RSS and state size of the full chain at 2 threads at each
#     larger size given (e.g. 1000000 5000000: 1.2 GB and 5.8 GB of input),
#     and how long minhash_dedupe then takes to read that index when a
#     later run starts;
#  3. recall at true Jaccard >= 0.8 and precision of the drops on a planted
#     near-duplicate corpus (minhash_quality), for each `verify` mode.
#   tests/bench/filter_chain.sh [RECORDS [RSS_RECORDS...]]   (from the repository root)
# MINHASH_PARAMS adds parameters to minhash_dedupe (e.g. "index_mb: 256").
# Builds into $BUILD_DIR (default build/) when needed; writes its files
# under $BENCH_DIR (default /tmp/distilld-bench) and removes the outputs
# and state afterwards (corpora are kept for the next run).
set -euo pipefail
cd "$(dirname "$0")/../.."
records=${1:-500000}
shift $(($# > 0 ? 1 : 0))
work=${BENCH_DIR:-/tmp/distilld-bench}
build=${BUILD_DIR:-build}
.ci/deps
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" -j2 daemon/distilld tests/make_corpus tests/plugins/minhash_dedupe/minhash_quality \
  plugins/jsonl/jsonl.so plugins/exact_dedupe/exact_dedupe.so plugins/minhash_dedupe/minhash_dedupe.so \
  plugins/policy/policy.so >/dev/null
distilld="$PWD/$build/daemon/distilld"
mkdir -p "$work"
minhash="{plugin: minhash_dedupe${MINHASH_PARAMS:+, $MINHASH_PARAMS}}"
chain="{plugin: exact_dedupe}, $minhash, {plugin: policy}"

corpus() {  # corpus RECORDS -> path of a 1 KB-response corpus (generated once)
  local file="$work/corpus-$1.jsonl"
  [ -f "$file" ] || "$build/tests/make_corpus" "$file" --records "$1" --response-bytes 1024 --messages-only >/dev/null
  echo "$file"
}

# run DIR THREADS CORPUS STAGES -> "wall_s cpu_s rss_kb" of `distilld run` on a fresh state (kept in
# DIR, with the run's summary in DIR/summary.txt)
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
  /usr/bin/time -f "%e %U %S %M" "$distilld" run -q "$dir/pipeline.yaml" 2>&1 >"$dir/summary.txt" | tail -n1 |
    awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }'
}

mbps() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? m / s : 0) }'; }
size_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f", b / 1e6 }'; }

input=$(corpus "$records")
mb=$(size_mb "$input")
echo "throughput: $input ($records lines, $mb MB)"
printf "%-62s %7s %7s %7s %9s %9s\n" "pipeline (best of ${ROUNDS:-3})" "wall s" "cpu s" "MB/s" "MB/s/core" "peak RSS"
declare -A cpu busy
rounds=${ROUNDS:-3}
measure() {  # measure NAME THREADS STAGES [STEP]: the best of $rounds runs
  local wall_s cpu_s rss_kb best="" best_cpu=""
  for _ in $(seq "$rounds"); do
    read -r wall_s cpu_s rss_kb < <(run "$work/filter-run" "$2" "$input" "$3")
    if [ -z "$best" ] || awk -v a="$cpu_s" -v b="$best_cpu" 'BEGIN { exit !(a < b) }'; then
      best="$wall_s $cpu_s $rss_kb"
      best_cpu=$cpu_s
      [ -n "${4:-}" ] && busy[$1]=$(awk -v step="$4" '$1 == step { print $NF }' "$work/filter-run/summary.txt")
    fi
    rm -rf "$work/filter-run"
  done
  read -r wall_s cpu_s rss_kb <<< "$best"
  cpu[$1]=$cpu_s
  printf "%-62s %7s %7s %7s %9s %8sM\n" "jsonl -> ${3:+$3 -> }jsonl, $2 thr" "$wall_s" "$cpu_s" \
    "$(mbps "$mb" "$wall_s")" "$(mbps "$mb" "$cpu_s")" "$((rss_kb / 1024))"
}
measure baseline 1 ""
measure minhash 1 "$minhash" minhash_dedupe
measure policy 1 "{plugin: policy}" policy
measure chain-1 1 "$chain"
measure chain-2 2 "$chain"
for stage in minhash policy; do
  extra=$(awk -v a="${cpu[$stage]}" -v b="${cpu[baseline]}" 'BEGIN { printf "%.2f", a - b }')
  echo "$stage alone: $(mbps "$mb" "$extra") MB/s per core ($extra CPU s over the baseline);" \
    "$(mbps "$mb" "${busy[$stage]}") MB/s per busy second of its step (${busy[$stage]} s)"
done

for big in "$@"; do
  input=$(corpus "$big")
  mb=$(size_mb "$input")
  read -r wall_s cpu_s rss_kb < <(run "$work/filter-big" 2 "$input" "$chain")
  echo "full chain, $big records ($mb MB), 2 threads: $wall_s s wall, $(mbps "$mb" "$wall_s") MB/s," \
    "$(mbps "$mb" "$cpu_s") MB/s per core, peak RSS $((rss_kb / 1024)) MB, state $(du -sm "$work/filter-big/state" | cut -f1) MB"
  head -n 1 "$input" > "$work/one.jsonl"
  sed -i "s|path: .*}|path: $work/one.jsonl}|" "$work/filter-big/pipeline.yaml"
  "$distilld" run -q --new-run "$work/filter-big/pipeline.yaml" 2>&1 >/dev/null | grep -E "minhash_dedupe.*(records read in|moved)" |
    sed 's/^/    next run: /' || true
  rm -rf "$work/filter-big"
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
