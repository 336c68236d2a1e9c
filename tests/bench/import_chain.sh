#!/usr/bin/env bash
# Benchmark: jsonl source -> exact_dedupe -> jsonl sink on a generated
# corpus of 1 KB responses (default 500k lines, ~580 MB), at 1 and 2
# threads, with records/s, MB/s and peak RSS; and the bare cost of reading
# the file (cat, and wc -l) for comparison.
#   tests/bench/import_chain.sh [RECORDS]     (from the repository root)
# Builds into build/ when needed; writes its files under $BENCH_DIR
# (default /tmp/distilld-bench) and removes the outputs afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
records=${1:-500000}
work=${BENCH_DIR:-/tmp/distilld-bench}
.ci/deps
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build -j2 daemon/distilld tests/make_corpus plugins/jsonl/jsonl.so plugins/exact_dedupe/exact_dedupe.so >/dev/null
mkdir -p "$work"
corpus="$work/corpus-$records.jsonl"
[ -f "$corpus" ] || build/tests/make_corpus "$corpus" --records "$records" --response-bytes 1024 --messages-only
bytes=$(stat -c %s "$corpus")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }')
echo "corpus: $corpus ($records lines, $mb MB)"

seconds() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n1; }
read -r cat_s _ < <(seconds cat "$corpus")
read -r wc_s _ < <(seconds wc -l "$corpus")
printf "%-28s %8s %12s %10s %10s\n" "what" "seconds" "records/s" "MB/s" "peak RSS"
printf "%-28s %8s %12s %10s %10s\n" "cat > /dev/null (warm)" "$cat_s" "-" "$(awk -v m="$mb" -v s="$cat_s" 'BEGIN { printf "%.0f", m / s }')" "-"
printf "%-28s %8s %12s %10s %10s\n" "wc -l (warm)" "$wc_s" "-" "$(awk -v m="$mb" -v s="$wc_s" 'BEGIN { printf "%.0f", m / s }')" "-"

for threads in 1 2; do
  dir="$work/t$threads"
  rm -rf "$dir"
  mkdir -p "$dir"
  cat > "$dir/pipeline.yaml" <<YAML
name: bench
engine: {threads: $threads, batch_size: 256, max_inflight_batches: 16, checkpoint_every_records: 10000}
source: {plugin: jsonl, path: $corpus}
stages:
  - {plugin: exact_dedupe, key: prompt+response}
sinks:
  - {plugin: jsonl, dir: out}
YAML
  read -r run_s rss_kb < <(seconds build/daemon/distilld run -q "$dir/pipeline.yaml")
  printf "%-28s %8s %12s %10s %9sM\n" "distilld, $threads thread(s)" "$run_s" \
    "$(awk -v r="$records" -v s="$run_s" 'BEGIN { printf "%.0f", r / s }')" \
    "$(awk -v m="$mb" -v s="$run_s" 'BEGIN { printf "%.0f", m / s }')" "$((rss_kb / 1024))"
  rm -rf "$dir"
done
