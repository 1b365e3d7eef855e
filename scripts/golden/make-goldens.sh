#!/usr/bin/env bash
# make-goldens.sh — regenerate testdata/golden/{tiny,small,tiny-f32}.json:
# what llama.cpp's CPU implementation says about ocelot's synthetic models.
#
# Run from anywhere (it works in the repository root):
#
#   (cd scripts/golden && npm run install-lean)   # once; or `npm ci` (see README.md)
#   scripts/golden/make-goldens.sh
#
# What it does, per preset (tiny, then small):
#   1. builds bin/ocelot (CGO_ENABLED=0 go build -o bin/ocelot ./cmd/ocelot);
#   2. generates the model with `bin/ocelot gen --preset P --seed 1` into
#      .cache/golden/ — the default options (q4_0 weights, q6_K output, seed 1,
#      built-in vocabulary), exactly what internal/testmodel.Preset makes, so
#      golden_test.go regenerates a bit-identical file; its SHA-256 goes into
#      the golden file and the test checks it;
#   3. tokenizes the prompts of scripts/golden/prompts.json with llama.cpp
#      (`golden.mjs tokenize`, --special for the chat prompt) and adds BOS as
#      llama.cpp's add_special does (llama_vocab_get_add_bos);
#   4. runs `golden.mjs eval --top-k 10` (teacher-forced probabilities at every
#      position) and `golden.mjs greedy -n 32`, both with 2 threads, f16 KV
#      cache and flash attention auto (llama.cpp's defaults);
#   5. writes testdata/golden/P.json (make-goldens.mjs) with the versions of
#      node-llama-cpp and llama.cpp, the settings, the CPU and the model's
#      SHA-256.
# Then, for tiny only, the same with all-f32 weights (--type f32
# --output-type f32), an f32 KV cache and flash attention off: llama.cpp
# rounds no activation there, so testdata/golden/tiny-f32.json pins ocelot's
# reference engine to float rounding (docs/CONFORMANCE.md says why the
# quantized models cannot be held that close).
# Then check ocelot against them: go test -run TestGolden -v .
#
# Settings can be changed through the environment, for experiments that
# attribute differences (the committed goldens use the defaults):
#   PRESETS="tiny small"  EXACT_PRESETS=tiny ("" for none)  OUT_DIR=testdata/golden
#   THREADS=2  TOP_K=10  N=32
#   KV_TYPE=f16 (f32, q8_0, q4_0)  FLASH_ATTN=auto (on, off)
#   TYPE=q4_0 OUTPUT_TYPE=q6_K     weight types given to `ocelot gen`
# e.g. OUT_DIR=/tmp/g EXACT_PRESETS= KV_TYPE=f32 FLASH_ATTN=off scripts/golden/make-goldens.sh \
#      && OCELOT_GOLDEN_DIR=/tmp/g go test -run 'TestGolden$' -v .
# (OCELOT_GOLDEN_EMULATE=1 adds ref with ggml's activation rounding to the log.)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

PRESETS=${PRESETS:-"tiny small"}
OUT_DIR=${OUT_DIR:-testdata/golden}
THREADS=${THREADS:-2}
TOP_K=${TOP_K:-10}
N=${N:-32}
KV_TYPE=${KV_TYPE:-f16}
FLASH_ATTN=${FLASH_ATTN:-auto}
TYPE=${TYPE:-q4_0}
OUTPUT_TYPE=${OUTPUT_TYPE:-q6_K}
EXACT_PRESETS=${EXACT_PRESETS-tiny}

if [ ! -d scripts/golden/node_modules/node-llama-cpp ]; then
	echo "make-goldens: node-llama-cpp is not installed; run: (cd scripts/golden && npm run install-lean)  (or npm ci)" >&2
	exit 1
fi

echo "make-goldens: building bin/ocelot" >&2
CGO_ENABLED=0 go build -o bin/ocelot ./cmd/ocelot

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1 || true)
models=.cache/golden
mkdir -p "$models" "$OUT_DIR"

# make_golden PRESET TYPE OUTPUT_TYPE KV_TYPE FLASH_ATTN OUT_FILE
make_golden() {
	local preset=$1 type=$2 otype=$3 kv=$4 fa=$5 out=$6
	local model="$models/$preset-$type-$otype.gguf"
	bin/ocelot gen --preset "$preset" --seed 1 --type "$type" --output-type "$otype" -o "$model" >&2
	local sha
	sha=$(sha256sum "$model" | cut -d' ' -f1)
	echo "make-goldens: $model sha256 $sha" >&2
	node scripts/golden/make-goldens.mjs \
		--model "$model" --preset "$preset" --sha256 "$sha" --type "$type" --output-type "$otype" \
		--prompts scripts/golden/prompts.json --out "$out" \
		--top-k "$TOP_K" -n "$N" --threads "$THREADS" --kv-type "$kv" --flash-attn "$fa" \
		--cpu "$cpu" --generator "ocelot gen --preset $preset --seed 1 --type $type --output-type $otype"
}

for preset in $PRESETS; do
	make_golden "$preset" "$TYPE" "$OUTPUT_TYPE" "$KV_TYPE" "$FLASH_ATTN" "$OUT_DIR/$preset.json"
done
# The exact goldens: all-f32 weights, f32 KV cache, flash attention off.
# llama.cpp then rounds no activation, so ref must match it to float
# rounding; these catch small errors the quantized goldens cannot see.
for preset in $EXACT_PRESETS; do
	make_golden "$preset" f32 f32 f32 off "$OUT_DIR/$preset-f32.json"
done
