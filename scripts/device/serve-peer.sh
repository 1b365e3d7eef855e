#!/usr/bin/env bash
# ocelot serve (OpenCL, all layers) and llama-server (llama.cpp 80fb11a,
# CUDA, flash attention, unified KV) side by side on the H200, the 8b
# preset, under the same streaming clients (scripts/servebench), each
# engine in turn, twice: the server issue's GPU row. Build here first:
#   scripts/device/peer.sh pack
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot
#   CGO_ENABLED=0 go build -o .devrun/servebench ./scripts/servebench
# and run there with .devrun carried. Both servers get n_ctx 512 for each
# of $SERVE_CLIENTS (default 32) slots; servebench runs with each count in
# $SERVE_RUNS (default "8 32"), 2 requests per client, 64 tokens each from
# a 48-word prompt. The build log lands in $OUT/build.txt.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/device/lib.sh"
OUT=${OUT:-/tmp}
model 8b &
G=$!
echo "== build llama-server ($(date +%T))"
[ -x /tmp/llsrc/build/bin/llama-server ] || llama_build llama-server >"$OUT/build.txt" 2>&1
LS=/tmp/llsrc/build/bin/llama-server
[ -x $LS ] || { echo "llama-server did not build"; tail -30 "$OUT/build.txt"; exit 1; }
wait $G
n=${SERVE_CLIENTS:-32}
bench() { # port
	for c in ${SERVE_RUNS:-8 $n}; do
		echo "  clients $c: $("$root/.devrun/servebench" -url http://127.0.0.1:$1 -clients $c -requests $((2 * c)) -n 64 -prompt 48 2>>"$OUT/servebench.err")"
	done
}
up() { # port, pid
	for _ in $(seq 600); do
		curl -s localhost:$1/health | grep -q ok && return 0
		kill -0 $2 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
for round in 1 2; do
	echo "== round $round ocelot ($(date +%T))"
	"$B" serve -m $M/8b.gguf -c 512 --parallel $n --queue 128 -ngl 99 --backend opencl --device "$dev" --port 8090 -q 2>>"$OUT/ocelot-serve.log" &
	P=$!
	up 8090 $P && bench 8090
	kill -INT $P
	wait $P
	echo "== round $round llama-server ($(date +%T))"
	$LS -m $M/8b.gguf -c $((512 * n)) -np $n -kvu -ngl 99 -fa on --host 127.0.0.1 --port 8091 >>"$OUT/llama-server.log" 2>&1 &
	P=$!
	up 8091 $P && bench 8091
	kill -INT $P
	wait $P
done
echo "== done ($(date +%T))"
