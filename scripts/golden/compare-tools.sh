#!/usr/bin/env bash
# ocelot quantize and ocelot perplexity against llama.cpp's llama-quantize
# and llama-perplexity, built from the source that npm's node-llama-cpp
# 3.21.1 bundles (release 80fb11a), on models ocelot generates:
#
#   1. an F16 parent (the small preset) quantized to q8_0 and q4_0 by both
#      tools: every tensor must be bit-identical (ggufdiff);
#   2. each output of ocelot quantize loads in llama.cpp (llama-perplexity
#      runs on it);
#   3. perplexity of the parent and both quantizations over a text of
#      this repository's documents, n_ctx 128: ocelot's final estimate
#      must agree with llama-perplexity's within 1%.
#
# Needs cmake, ninja and a C++ compiler (apt-get install cmake ninja-build
# g++) and npm; the first run builds the two tools into
# .cache/llama-tools (about 15 minutes on 2 cores), later runs reuse them.
# Usage: scripts/golden/compare-tools.sh   (exit status 1 on a failed check)
# MODEL=F16.gguf TEXT=FILE CTX=N CHUNKS=N compare another parent (the
# shipped model: MODEL=testdata/model/ocelot-go-f16.gguf with the
# held-out Go text of scripts/train) on another text.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
T=$root/.cache/llama-tools
W=$root/.cache/compare-tools
mkdir -p "$T" "$W"
export CGO_ENABLED=0
go build -o "$W/ocelot" ./cmd/ocelot
go build -o "$W/ggufdiff" ./scripts/golden/ggufdiff
O=$W/ocelot

if [ ! -x "$T/build/bin/llama-perplexity" ] || [ ! -x "$T/build/bin/llama-quantize" ]; then
	bundle=scripts/golden/node_modules/node-llama-cpp/llama/gitRelease.bundle
	[ -f "$bundle" ] || (cd scripts/golden && npm ci --ignore-scripts)
	rm -rf "$T/src"
	git clone -q "$bundle" "$T/src"
	# A native build of this release crashes on some of our machines:
	# name the instruction sets instead.
	cmake -S "$T/src" -B "$T/build" -G Ninja -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON \
		-DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
		-DCMAKE_BUILD_TYPE=Release >"$T/cmake.log"
	cmake --build "$T/build" --target llama-perplexity llama-quantize -j "$(nproc)" >"$T/build.log"
fi
LQ=$T/build/bin/llama-quantize
LP=$T/build/bin/llama-perplexity

fail=0
check() { # what, ok (0/1)
	if [ "$2" = 1 ]; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi
}

if [ -n "${MODEL:-}" ]; then
	cp "$MODEL" "$W/f16.gguf"
else
	"$O" gen --preset small --type f16 --output-type f16 --seed 3 -o "$W/f16.gguf" >/dev/null
fi
if [ -n "${TEXT:-}" ]; then
	cp "$TEXT" "$W/text.txt"
else
	cat README.md DEVELOPERS.md docs/*.md >"$W/text.txt"
fi
ctx=${CTX:-128}
chunks=${CHUNKS:-16}

for t in q8_0 q4_0; do
	"$O" quantize "$W/f16.gguf" "$W/ocelot-$t.gguf" $t >"$W/quantize-ocelot-$t.log" 2>&1
	"$LQ" "$W/f16.gguf" "$W/llama-$t.gguf" $t >"$W/quantize-llama-$t.log" 2>&1
	if "$W/ggufdiff" "$W/ocelot-$t.gguf" "$W/llama-$t.gguf" >"$W/diff-$t.txt"; then ok=1; else ok=0; fi
	check "quantize $t: $(head -1 "$W/diff-$t.txt")" $ok
done

ppl() { sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$1" | tail -1; }
for m in f16 ocelot-q8_0 ocelot-q4_0; do
	"$O" perplexity -m "$W/$m.gguf" -f "$W/text.txt" -c $ctx -b $ctx --chunks $chunks --backend cpu >"$W/ppl-ocelot-$m.log" 2>&1
	"$LP" -m "$W/$m.gguf" -f "$W/text.txt" -c $ctx -b $ctx --chunks $chunks -t "$(nproc)" >"$W/ppl-llama-$m.log" 2>&1 || true
	a=$(ppl "$W/ppl-ocelot-$m.log")
	b=$(ppl "$W/ppl-llama-$m.log")
	if [ -z "$b" ]; then
		check "llama.cpp loads and scores $m (see $W/ppl-llama-$m.log)" 0
		continue
	fi
	[ "$m" = f16 ] || check "llama.cpp loads ocelot's $m" 1
	ok=$(awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; print (d <= 0.01 * b) ? 1 : 0 }')
	check "perplexity $m (-c $ctx, $chunks chunks): ocelot $a, llama.cpp $b (within 1%)" "$ok"
done
exit $fail
