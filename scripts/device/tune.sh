#!/usr/bin/env bash
# The tuner on the H200 (issue 16): with an empty cache, `ocelot tune
# --quick` then a full tune of the 1b and 8b presets, on the vendor kernels
# and on the portable ones (OCELOT_OPENCL_KERNELS=generic); then bench with
# the tuned choices against the untuned ones in one run (--tune auto,off),
# for both kernel sets; then `ocelot conformance --backend opencl --quick`,
# whose end-to-end part loads its models with the tuner on and whose op
# cases force every product kernel the tuner may choose. Build here first:
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot
#   CGO_ENABLED=0 go test -c -o .devrun/opencl.test ./plugin/opencl   # optional: TestTune there too
# and run there with those carried.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp}
. "$root/scripts/device/lib.sh"
export XDG_CACHE_HOME=$(mktemp -d) # an empty cache: the first tune measures
model 1b
model 8b
for kernels in auto generic; do
	for p in 1b 8b; do
		for how in --quick ""; do
			echo "== tune $p kernels=$kernels ${how:-full} ($(date +%T))"
			OCELOT_OPENCL_KERNELS=$kernels timeout 300 "$B" tune -m $M/$p.gguf -ngl 99 --backend opencl --device "$dev" $how -q >"$OUT/tune-$kernels-$p${how}.txt" 2>&1
			head -12 "$OUT/tune-$kernels-$p${how}.txt"
		done
	done
done
for kernels in auto generic; do
	echo "== bench kernels=$kernels ($(date +%T))"
	OCELOT_OPENCL_KERNELS=$kernels timeout 400 "$B" bench -m $M/1b.gguf -m $M/8b.gguf -p 512 -n 64 -ngl 99 -r 2 --backend opencl --device "$dev" --tune auto,off 2>/dev/null | grep '|'
done
echo "== conformance ($(date +%T))"
timeout 300 "$B" conformance --backend opencl --device "$dev" --quick 2>&1 | tail -3
if [ -x "$root/.devrun/opencl.test" ]; then
	echo "== package tests: the tuner ($(date +%T))"
	(cd "$root/plugin/opencl" && timeout 200 "$root/.devrun/opencl.test" -test.run 'TestTune' -test.v 2>&1 | grep -E '^(---|ok|FAIL|PASS)|tune_test' | head -30)
fi
