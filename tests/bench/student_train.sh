#!/usr/bin/env bash
# Benchmark of the student, in one command:
#  1. training tokens/s of the C++ trainer (libstudent_torch.so) and of the
#     same model, optimiser and batches in PyTorch (Debian's python3-torch,
#     tests/bench/student_train_torch.py), side by side in one run, at two
#     sizes (~1.1 M and ~5.3 M parameters), 1 and 2 threads, with each
#     process's peak RSS; the best of $ROUNDS runs (default 3) of each,
#     alternating the two;
#  2. generation: the demo's curated student (runs/demo/student, made by
#     .ci/demo) answering pipelines/data/test_prompts.jsonl greedily, by
#     `distilld generate` and by llama.cpp (node-llama-cpp) on its GGUF:
#     wall seconds for the whole batch (model loading included) and tokens/s.
# Both sides run with OMP_WAIT_POLICY=PASSIVE, as the student plugin sets
# it: libgomp's default active wait makes 2 threads several times slower
# than 1 here, for PyTorch as much as for us.
#   tests/bench/student_train.sh            (from the repository root)
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
rounds=${ROUNDS:-3}
steps=${STEPS:-40}
.ci/deps
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" -j2 tests/student_train_bench plugins/student/libstudent_torch.so daemon/distilld \
  plugins/student/student.so >/dev/null
python=/usr/bin/python3

run() {  # tokens/s and peak RSS of one run of a command printing {"tokens_per_s", "peak_rss_mb"}
  "$@" | $python -c 'import json,sys; j=json.load(sys.stdin); print(j["tokens_per_s"], j["peak_rss_mb"])'
}

# The best of $rounds runs of each side, alternating ours and theirs, so a
# change in the machine's load (it is a shared VM) falls on both.
best_of_both() {  # best_of_both "OURS COMMAND" "THEIR COMMAND" -> ours_tps ours_rss theirs_tps theirs_rss
  local ours=(0 0) theirs=(0 0) tps rss
  for _ in $(seq "$rounds"); do
    read -r tps rss < <(run $1)
    if $python -c "import sys; sys.exit(0 if $tps > ${ours[0]} else 1)"; then ours=("$tps" "$rss"); fi
    read -r tps rss < <(run $2)
    if $python -c "import sys; sys.exit(0 if $tps > ${theirs[0]} else 1)"; then theirs=("$tps" "$rss"); fi
  done
  echo "${ours[*]} ${theirs[*]}"
}

echo "training: batch 32, sequence 64, $steps steps, best of $rounds"
printf '%-24s %8s %14s %14s %8s %12s %12s\n' model threads "C++ tok/s" "PyTorch tok/s" ratio "C++ RSS MB" "Py RSS MB"
for size in "1.1M:--vocab 512 --layers 4 --d-model 128 --heads 4 --kv-heads 4 --ffn 512" \
            "5.3M:--vocab 512 --layers 5 --d-model 256 --heads 4 --kv-heads 4 --ffn 1024"; do
  name=${size%%:*}
  # shellcheck disable=SC2206
  args=(${size#*:} --seq 64 --batch 32 --steps "$steps")
  for threads in 1 2; do
    read -r ours our_rss theirs their_rss < <(best_of_both \
      "$build/tests/student_train_bench $build/plugins/student/libstudent_torch.so ${args[*]} --threads $threads" \
      "$python tests/bench/student_train_torch.py ${args[*]} --threads $threads")
    $python -c "print(f'{\"$name params\":<24} {$threads:>8} {$ours:>14,.0f} {$theirs:>14,.0f} {$ours/$theirs:>7.2f}x {$our_rss:>12.0f} {$their_rss:>12.0f}')"
  done
done

student=runs/demo/student
if [ ! -f "$student/model.gguf" ]; then
  echo "generation: no $student/model.gguf (run bash .ci/demo first)"
  exit 0
fi
package=$(bash tests/plugins/student/setup_llama_cpp.sh | tail -n 1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$python - "$work" <<'PY'
import json, sys
system = "You spell numbers digit by digit."
prompts = [json.loads(line)["prompt"] for line in open("pipelines/data/test_prompts.jsonl")]
json.dump([f"<|system|>{system}<|end|><|user|>{p}<|end|><|assistant|>" for p in prompts], open(sys.argv[1] + "/texts.json", "w"))
PY
start=$(date +%s.%N)
"$build/daemon/distilld" generate "$student" --file pipelines/data/test_prompts.jsonl --max-tokens 16 --threads 1 >"$work/ours.jsonl"
ours_s=$($python -c "print($(date +%s.%N) - $start)")
node tests/plugins/student/llama_cpp_generate.mjs --package "$package" --model "$student/model.gguf" \
  tokenize --special --texts "$work/texts.json" 2>/dev/null |
  $python -c 'import json,sys; print(json.dumps([json.loads(l)["tokens"] for l in sys.stdin]))' >"$work/prompts.json"
start=$(date +%s.%N)
node tests/plugins/student/llama_cpp_generate.mjs --package "$package" --model "$student/model.gguf" \
  generate --prompts "$work/prompts.json" --max-tokens 16 >"$work/theirs.jsonl" 2>/dev/null
theirs_s=$($python -c "print($(date +%s.%N) - $start)")
$python - "$work" "$ours_s" "$theirs_s" <<'PY'
import json, sys
work, ours_s, theirs_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
theirs = [json.loads(l) for l in open(work + "/theirs.jsonl")]
ours = [json.loads(l)["answer"] for l in open(work + "/ours.jsonl")]
tokens = sum(len(t["tokens"]) + (t["stop"] == "eogToken") for t in theirs)
same = sum(t["text"] == o for t, o in zip(theirs, ours))
print(f"generation: {len(ours)} prompts, {tokens} tokens (EOS included), same answers {same}/{len(ours)}, 1 thread")
print(f"  distilld generate  {ours_s:6.2f} s  {tokens / ours_s:8.0f} tokens/s (model load included)")
print(f"  llama.cpp          {theirs_s:6.2f} s  {tokens / theirs_s:8.0f} tokens/s (model load included)")
PY
