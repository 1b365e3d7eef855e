#!/usr/bin/env bash
# Per-op profile of batched decode (ocelot bench --parallel N --profile)
# on the 8b preset through OpenCL, for N in $PAR_N (default 1 2 8).
# Build here: CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot;
# run there with .devrun/ocelot carried.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/device/lib.sh"
m=${PAR_MODEL:-8b}
model $m
for np in ${PAR_N:-1 2 8}; do
	echo "== $m np $np"
	"$B" bench -m $M/$m.gguf -p 0 -n 32 --parallel $np -ngl 99 -r 1 --backend opencl --device "$dev" --profile 2>&1 | grep -v "^bench \[" | head -${PAR_LINES:-24}
done
