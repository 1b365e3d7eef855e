#!/usr/bin/env bash
# Two ocelot builds side by side on the H200 (OpenCL, all layers): batched
# decode of the 8b preset (tg64 with $AB_PAR sequences, default 1,8,16,32),
# builds alternating twice; then the new build's per-op profile with 8
# sequences, `ocelot conformance --backend opencl --quick` and the
# package's fused-op and product tests. Build here first:
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot     # new (b)
#   (a baseline build as .devrun/ocelot-a)
#   CGO_ENABLED=0 go test -c -o .devrun/opencl.test ./plugin/opencl
# and run there with those three carried.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp}
. "$root/scripts/device/lib.sh"
model 8b
A=$root/.devrun/ocelot-a
for round in 1 2; do
	for side in a b; do
		bin=$B
		[ $side = a ] && bin=$A
		[ -x "$bin" ] || continue
		echo "== round $round $side ($(date +%T))"
		timeout 240 "$bin" bench -m $M/8b.gguf -p 0 -n 64 --parallel ${AB_PAR:-1,8,16,32} -ngl 99 -r 2 --backend opencl --device "$dev" -o json >"$OUT/ab-$side-$round.json" 2>"$OUT/ab-$side-$round.err"
		python3 -c 'import json,sys; print(" ".join("np%d %.1f" % (r["n_parallel"], r["tps_mean"]) for r in json.load(open(sys.argv[1]))))' "$OUT/ab-$side-$round.json"
	done
done
echo "== profile ($(date +%T))"
timeout 120 "$B" bench -m $M/8b.gguf -p 0 -n 32 --parallel 8 -ngl 99 -r 1 --backend opencl --device "$dev" --profile >"$OUT/profile-np8.txt" 2>&1
grep -E 'profile:|MUL_MAT|FUSED|fused' "$OUT/profile-np8.txt" | head -20
echo "== conformance ($(date +%T))"
timeout 240 "$B" conformance --backend opencl --quick >"$OUT/conformance.txt" 2>&1
tail -3 "$OUT/conformance.txt"
echo "== tests ($(date +%T))"
(cd "$root/plugin/opencl" && OCELOT_REQUIRE_OPENCL=1 timeout 200 "$root/.devrun/opencl.test" -test.run 'Fused|FewTokens|TestMulMat$' -test.short >"$OUT/tests.txt" 2>&1; echo "tests rc=$?")
tail -3 "$OUT/tests.txt"
