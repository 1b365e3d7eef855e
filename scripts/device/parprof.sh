#!/usr/bin/env bash
# Per-op profile of batched decode (ocelot bench --parallel N --profile)
# on the 8b preset through OpenCL, for N in $PAR_N (default 1 2 8).
# Build here: CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot;
# run there with .devrun/ocelot carried.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
icd=$(mktemp -d)
echo libnvidia-opencl.so.1 >"$icd/nvidia.icd"
export OCL_ICD_VENDORS=$icd
B=$root/.devrun/ocelot
M=/tmp/peer-models
mkdir -p "$M"
m=${PAR_MODEL:-8b}
[ -f $M/$m.gguf ] || "$B" gen --preset $m --fast -o $M/$m.gguf >/dev/null
dev=$("$B" devices --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"]; print([x["index"] for x in d if x["type"]=="GPU"][0])')
for np in ${PAR_N:-1 2 8}; do
	echo "== $m np $np"
	"$B" bench -m $M/$m.gguf -p 0 -n 32 --parallel $np -ngl 99 -r 1 --backend opencl --device "$dev" --profile 2>&1 | grep -v "^bench \[" | head -${PAR_LINES:-24}
done
