#!/usr/bin/env bash
# Aggregate decode of N sequences generated together (issue 18's goal:
# 8 sequences at least 6x one on the H200, 8B), through OpenCL: ocelot
# bench --parallel on the 1b and 8b presets, each sequence its own
# prompt. Build here first:
#
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot
#
# then run there with .devrun carried: scripts/device/parallel.sh
# (about 4 minutes; results on stdout and in $OUT/parallel-*.json).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$root/out}
mkdir -p "$OUT"
. "$root/scripts/device/lib.sh"
for m in ${PAR_MODELS:-1b 8b}; do
	model $m
	echo "== $m tg64 ($(date +%T))"
	timeout 240 "$B" bench -m $M/$m.gguf -p 0 -n 64 --parallel ${PAR_N:-1,2,4,8,16} -ngl 99 -r 2 --backend opencl --device "$dev" -o json >"$OUT/parallel-$m-tg.json" 2>"$OUT/parallel-$m-tg.err"
	python3 -c 'import json,sys; [print("  '$m'",r["test"],"np",r["n_parallel"],round(r["tps_mean"],1),"t/s") for r in json.load(open(sys.argv[1]))]' "$OUT/parallel-$m-tg.json"
	echo "== $m pp128+tg64 ($(date +%T))"
	timeout 240 "$B" bench -m $M/$m.gguf -p 0 -n 0 -pg 128,64 --parallel ${PAR_N:-1,2,4,8,16} -ngl 99 -r 2 --backend opencl --device "$dev" -o json >"$OUT/parallel-$m-pg.json" 2>"$OUT/parallel-$m-pg.err"
	python3 -c 'import json,sys; [print("  '$m'",r["test"],"np",r["n_parallel"],round(r["tps_mean"],1),"t/s, ttft",round(r["ttft_ms"],1),"ms") for r in json.load(open(sys.argv[1]))]' "$OUT/parallel-$m-pg.json"
done
