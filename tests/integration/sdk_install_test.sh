#!/usr/bin/env bash
# Installs the SDK (headers + distill-sdk.pc) into a temporary prefix, builds
# examples/custom_plugin there with pkg-config only, and runs a pipeline
# through the resulting plugin with the build's distilld.
set -euo pipefail
build_dir=$1
source_dir=$2
distilld=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

DESTDIR="$work/stage" meson install -C "$build_dir" --no-rebuild --quiet --tags devel >/dev/null
pc_file=$(find "$work/stage" -name distill-sdk.pc | head -n1)
[ -n "$pc_file" ] || { echo "FAIL: meson install put no distill-sdk.pc in place"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc_file")
export PKG_CONFIG_SYSROOT_DIR="$work/stage"
pkg-config --cflags distill-sdk | grep -q -- "-I$work/stage" || { echo "FAIL: cflags do not point into the staged prefix"; exit 1; }

cp -r "$source_dir/examples/custom_plugin" "$work/plugin"
make -s -C "$work/plugin" >/dev/null

python3 - "$work/input.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(100):
        answer = "ok" if i % 4 == 0 else "a long enough answer number %d" % i
        f.write(json.dumps({"messages": [{"role": "user", "content": "q%d" % i},
                                         {"role": "assistant", "content": answer}]}) + "\n")
PY
cat > "$work/pipeline.yaml" <<'YAML'
name: sdk-example
source: {plugin: jsonl, path: input.jsonl}
stages:
  - {plugin: short_answer_filter, min_chars: 10}
sinks:
  - {plugin: jsonl, dir: out}
YAML
export DISTILLD_PLUGIN_PATH="$work/plugin"
"$distilld" plugins --describe short_answer_filter | grep -q "min_chars (int, default 20, min 0)" \
  || { echo "FAIL: distilld plugins does not describe the example"; exit 1; }
summary=$("$distilld" run -q "$work/pipeline.yaml")
echo "$summary"
echo "$summary" | grep -Eq "dropped too_short +25$" || { echo "FAIL: expected 25 too_short drops"; exit 1; }
kept=$(cat "$work"/out/part-*.jsonl | wc -l)
[ "$kept" -eq 75 ] || { echo "FAIL: expected 75 kept records, got $kept"; exit 1; }
echo "PASS: out-of-tree plugin built from the installed SDK ran in a pipeline"
