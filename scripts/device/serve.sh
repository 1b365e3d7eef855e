#!/usr/bin/env bash
# ocelot serve on the H200 (OpenCL, all layers) under concurrent streaming
# clients (scripts/servebench): the 8b preset, $SERVE_CLIENTS clients
# (default 32). Build here first:
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot
#   CGO_ENABLED=0 go build -o .devrun/servebench ./scripts/servebench
# and run there with .devrun/ocelot and .devrun/servebench carried.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/device/lib.sh"
model 8b
n=${SERVE_CLIENTS:-32}
"$B" serve -m $M/8b.gguf -c 512 --parallel $n --queue 64 -ngl 99 --backend opencl --device "$dev" --port 8090 -q 2>/tmp/serve.log &
P=$!
for i in $(seq 300); do curl -s localhost:8090/health >/dev/null && break; sleep 0.2; done
for c in ${SERVE_RUNS:-1 $n}; do
	echo "clients $c: $("$root/.devrun/servebench" -url http://127.0.0.1:8090 -clients $c -requests $((2 * c)) -n 64 -prompt 48)"
done
kill -INT $P
wait $P
