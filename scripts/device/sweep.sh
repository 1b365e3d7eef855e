#!/usr/bin/env bash
# A sweep of the row-group GEMV's tuning switches on the device machine:
# blocks per lane and x tile (OCELOT_OPENCL_MW_B, a build option) and row
# groups per work-group (OCELOT_OPENCL_MW_G), timed alone (TestGEMVSpeed,
# the 8b shapes, one token) and end to end (tg128 of the 1b and 8b
# presets, KV f16). Build here first:
#
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot
#   CGO_ENABLED=0 go test -c -o .devrun/opencl.test ./plugin/opencl
#
# then run there with .devrun carried: scripts/device/sweep.sh
# (about 4 minutes; results in $OUT/sweep.tgz and on stdout).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$root/out}
mkdir -p "$OUT"
R=$(mktemp -d)
pack() { tar -C "$R" -czf "$OUT/sweep.tgz" .; }
. "$root/scripts/device/lib.sh"
model 1b
model 8b
for mwb in ${SWEEP_B:-1 2 4}; do
	for mwg in ${SWEEP_G:-4 8 16}; do
		export OCELOT_OPENCL_MW_B=$mwb OCELOT_OPENCL_MW_G=$mwg
		tag=b$mwb-g$mwg
		echo "== $tag ($(date +%T))"
		(cd "$root/plugin/opencl" && OCELOT_OPENCL_BENCH=1 OCELOT_OPENCL_GEMV_TOKENS=1 OCELOT_OPENCL_GEMV_ITERS=100 OCELOT_OPENCL_DEVICE=$dev \
			timeout 90 ../../.devrun/opencl.test -test.run 'TestGEMVSpeed$' -test.v 2>&1 | grep "GEMV q4_0" | sed "s/^ */  /" | tee "$R/gemv-$tag.txt")
		for m in 1b 8b; do
			timeout 120 "$B" bench -m $M/$m.gguf -p 0 -n 128 -ngl 99 -r 3 -o json --backend opencl --device "$dev" >"$R/tg-$m-$tag.json" 2>/dev/null
			python3 -c 'import json,sys; [print("  '$m'",r["test"],round(r["tps_mean"],1),"±",round(r["tps_std"],1)) for r in json.load(open(sys.argv[1]))]' "$R/tg-$m-$tag.json" | tee -a "$R/summary.txt"
		done
		pack
	done
done
