#!/usr/bin/env bash
# A/B speed and output check for the device machine: two builds of ocelot
# (.devrun/ocelot-a, the baseline, and .devrun/ocelot, the change), run in
# alternation on the same generated 1b and 8b models, OpenCL, all layers,
# KV f16: pp512 and tg128 (-r 2 after a warm-up), then greedy text from
# both builds, which must be identical. Build both here first:
#
#   git worktree add /tmp/base BASE && (cd /tmp/base && CGO_ENABLED=0 go build -o $PWD/.devrun/ocelot-a ./cmd/ocelot)
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot
#
# Results go to $OUT (or ./out), one file per step.
set -u
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
icd=$(mktemp -d)
echo libnvidia-opencl.so.1 >"$icd/nvidia.icd"
export OCL_ICD_VENDORS=$icd
A=$PWD/.devrun/ocelot-a
B=$PWD/.devrun/ocelot
M=$PWD/.devrun/models
mkdir -p "$M"
[ -f "$M/1b.gguf" ] || "$B" gen --preset 1b --fast -o "$M/1b.gguf" >/dev/null
[ -f "$M/8b.gguf" ] || "$B" gen --preset 8b --fast -o "$M/8b.gguf" >/dev/null
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>&1
dev=$("$B" devices --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"]; print([x["index"] for x in d if x["type"]=="GPU"][0])')
for round in 1 2; do
	for m in 1b 8b; do
		for side in a b; do
			bin=$A
			[ $side = b ] && bin=$B
			echo "== round $round $m $side ($(date +%T))"
			timeout 200 "$bin" bench -m "$M/$m.gguf" -p 512 -n 128 -ngl 99 -r 2 -o json --backend opencl --device "$dev" \
				>"$OUT/bench-$m-$side-$round.json" 2>"$OUT/bench-$m-$side-$round.err"
			python3 -c 'import json,sys; [print("  ",r["test"],round(r["tps_mean"],1)) for r in json.load(open(sys.argv[1]))]' "$OUT/bench-$m-$side-$round.json"
		done
	done
done
for m in 1b 8b; do
	for side in a b; do
		bin=$A
		[ $side = b ] && bin=$B
		timeout 120 "$bin" run -m "$M/$m.gguf" -p "The ocelot is a wild cat of the Americas. It hunts at night, and it" -n 32 --temp 0 \
			-ngl 99 --backend opencl --device "$dev" >"$OUT/text-$m-$side.txt" 2>/dev/null
	done
	cmp -s "$OUT/text-$m-a.txt" "$OUT/text-$m-b.txt" && echo "greedy text $m: identical" || echo "greedy text $m: DIFFERS"
done
# The per-op profile on the GPU, decode and prompt, with the change.
timeout 120 "$B" bench -m "$M/8b.gguf" -p 512 -n 64 -ngl 99 -r 1 --backend opencl --device "$dev" --profile >"$OUT/profile-8b.txt" 2>&1
# Everything in one file: only a few files come back from the device.
tar czf /tmp/ab-results.tgz -C "$OUT" . && find "$OUT" -type f ! -name ab.log -delete && mv /tmp/ab-results.tgz "$OUT/"
