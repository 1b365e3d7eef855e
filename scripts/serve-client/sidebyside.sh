#!/usr/bin/env bash
# ocelot serve and llama-server side by side, alternating twice, under
# scripts/servebench (8 streaming clients, 32 requests): run from the
# repository root with M=model.gguf, SERVEBENCH=the built servebench and
# LLAMA_BIN=the folder of llama-server and its libraries.
set -u
M=${M:?set M to a GGUF file}
for round in 1 2; do
  ./bin/ocelot serve -m $M -c 256 --parallel 8 -t 2 --backend cpu --port 8090 -q 2>/tmp/oc-serve.log &
  P=$!; for i in $(seq 100); do curl -s localhost:8090/health >/dev/null && break; sleep 0.2; done
  echo "ocelot round $round: $(${SERVEBENCH:-/tmp/servebench} -url http://127.0.0.1:8090 -clients 8 -requests 32 -n 32 -prompt 16)"
  kill -INT $P; wait $P
  LD_LIBRARY_PATH=${LLAMA_BIN:-/tmp/llbuild/bin} ${LLAMA_BIN:-/tmp/llbuild/bin}/llama-server -m $M -c 2048 -np 8 -t 2 --host 127.0.0.1 --port 8091 >/tmp/ll-serve.log 2>&1 &
  P=$!; for i in $(seq 300); do curl -s localhost:8091/health | grep -q ok && break; sleep 0.2; done
  echo "llama-server round $round: $(${SERVEBENCH:-/tmp/servebench} -url http://127.0.0.1:8091 -clients 8 -requests 32 -n 32 -prompt 16)"
  kill -INT $P; wait $P
done
