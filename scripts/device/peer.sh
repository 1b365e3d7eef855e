#!/usr/bin/env bash
# ocelot's OpenCL backend beside llama.cpp's CUDA backend, on the same
# GPU and the same generated GGUF files, in one run: the GPU-speed issue's
# table. Prepare here (the device has no Go and no network):
#
#   scripts/device/peer.sh pack          # llama.cpp's source from node-llama-cpp -> .devrun/llama-src.tar.xz
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot
#   (optional) a baseline build as .devrun/ocelot-a, to compare two ocelots too
#
# then run on the device with .devrun carried:  scripts/device/peer.sh run
# It builds llama-bench for sm_90 (about 4 minutes on 16 cores), generates
# the 1b and 8b presets, and measures pp512 and tg128 (KV f16; llama.cpp
# with flash attention off and on) and the 8b load-and-16-tokens start of
# both engines, alternating engines. Results go to $OUT/peer.tgz.
set -u
cmd=${1:?usage: peer.sh pack|run}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$cmd" = pack ]; then
	bundle=$root/scripts/golden/node_modules/node-llama-cpp/llama/gitRelease.bundle
	[ -f "$bundle" ] || { echo "run npm ci in scripts/golden first"; exit 1; }
	t=$(mktemp -d)
	git clone -q "$bundle" "$t/llsrc"
	(cd "$t/llsrc" && rm -rf .git models docs media &&
		cd ggml/src && ls -d ggml-*/ | grep -v -e ggml-cpu -e ggml-cuda | xargs rm -rf)
	mkdir -p "$root/.devrun"
	tar cJf "$root/.devrun/llama-src.tar.xz" -C "$t" llsrc
	rm -rf "$t"
	ls -la "$root/.devrun/llama-src.tar.xz"
	exit 0
fi
OUT=${OUT:-$root/out}
mkdir -p "$OUT"
R=$(mktemp -d)
pack() { tar -C "$R" -czf "$OUT/peer.tgz" .; }
log() { echo "== $* ($(date +%T))" | tee -a "$R/log.txt"; }
. "$root/scripts/device/lib.sh"
A=$root/.devrun/ocelot-a
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >"$R/gpu.txt" 2>&1

log build llama-bench
L=/tmp/llsrc
[ -x $L/build/bin/llama-bench ] || llama_build llama-bench >"$R/build.txt" 2>&1
LB=$L/build/bin/llama-bench
[ -x $LB ] || { echo "llama-bench did not build"; tail -30 "$R/build.txt"; pack; exit 1; }
pack

log generate models
model 1b
model 8b

# PEER_WAIT names a file to wait for (up to 10 minutes) before timing
# anything: work that shares the machine (a training run during the
# build, say) is done by then.
if [ -n "${PEER_WAIT:-}" ]; then
	log "wait for $PEER_WAIT"
	for _ in $(seq 600); do [ -e "$PEER_WAIT" ] && break; sleep 1; done
fi
# PEER_PARTS picks what runs (default: all; kvpeer is llama.cpp with the
# quantized caches too).
parts=${PEER_PARTS:-main kv kvpeer analysis start profile}
has() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
ocelot() { # name, timeout, args...
	local name=$1 t=$2
	shift 2
	timeout "$t" "$B" bench "$@" --backend opencl --device "$dev" -o json >"$R/ocelot-$name.json" 2>"$R/ocelot-$name.err"
}
if has main; then
	for m in 1b 8b; do
		log "$m llama.cpp CUDA"
		timeout 240 $LB -m $M/$m.gguf -p 512 -n 128 -r 3 -fa 0,1 -ngl 99 -o json >"$R/llama-$m.json" 2>"$R/llama-$m.err"
		pack
		for side in b a; do
			bin=$B
			[ $side = a ] && bin=$A
			[ -x "$bin" ] || continue
			log "$m ocelot $side"
			timeout 240 "$bin" bench -m $M/$m.gguf -p 512 -n 128 -ngl 99 -r 3 -o json --backend opencl --device "$dev" \
				>"$R/ocelot-$m-$side.json" 2>"$R/ocelot-$m-$side.err"
			pack
		done
	done
fi
if has kv; then
	# Quantized KV caches: ocelot's against its own f16 (goal: within
	# 10%), and (kvpeer) llama.cpp's with flash attention.
	for m in 1b 8b; do
		log "$m KV q8_0, q4_0"
		for kv in q8_0 q4_0; do
			ocelot "$m-kv-$kv" 200 -m $M/$m.gguf -p 512 -n 128 -ngl 99 -r 2 -ctk $kv -ctv $kv
			if has kvpeer; then
				timeout 200 $LB -m $M/$m.gguf -p 512 -n 128 -r 2 -fa 1 -ngl 99 -ctk $kv -ctv $kv -o json >"$R/llama-$m-kv-$kv.json" 2>/dev/null
			fi
		done
		pack
	done
fi
if has analysis; then
	# The original analysis's settings: a 327-token prompt, n_batch 64,
	# n_ubatch 8, 31 GPU layers, 8 threads; the KV cache on the device and
	# in host memory.
	log "analysis settings"
	ocelot analysis 200 -m $M/8b.gguf -p 327 -n 0 -b 64 -ub 8 -ngl 31 -t 8 -nkvo 0,1 -r 2
	timeout 200 $LB -m $M/8b.gguf -p 327 -n 0 -b 64 -ub 8 -ngl 31 -t 8 -nkvo 0,1 -r 2 -o json >"$R/llama-analysis.json" 2>/dev/null
	pack
fi
if has start; then
	# Start: load the 8b file onto the GPU and evaluate 16 tokens, warm
	# page cache, each engine twice in alternation.
	for round in 1 2; do
		log "start round $round"
		/usr/bin/time -f "llama %e s" $LB -m $M/8b.gguf -p 16 -n 0 -r 1 -ngl 99 -o csv >/dev/null 2>>"$R/start.txt"
		/usr/bin/time -f "ocelot %e s" "$B" bench -m $M/8b.gguf -p 16 -n 0 -r 1 -ngl 99 --backend opencl --device "$dev" >/dev/null 2>>"$R/start.txt"
	done
	# Where ocelot's start goes (go tool pprof .devrun/ocelot start.pprof).
	"$B" bench -m $M/8b.gguf -p 16 -n 0 -r 1 -ngl 99 --backend opencl --device "$dev" --cpuprofile "$R/start.pprof" >/dev/null 2>&1
	pack
fi
if has profile; then
	# The per-op profile, decode on both shapes.
	for m in 1b 8b; do
		timeout 120 "$B" bench -m $M/$m.gguf -p 0 -n 64 -ngl 99 -r 1 --backend opencl --device "$dev" --profile >"$R/profile-$m.txt" 2>&1
	done
	pack
fi
log done
python3 - "$R" <<'EOF'
import json, sys, os, glob
R = sys.argv[1]
def rows(p):
    try:
        return json.load(open(p))
    except Exception as e:
        print(os.path.basename(p), "unreadable:", e)
        return []
for p in sorted(glob.glob(f"{R}/llama-*.json")):
    for r in rows(p):
        t = f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']}"
        print(f"{os.path.basename(p)[:-5]} fa={int(r['flash_attn'])} kv={r['type_k']} nkvo={int(r['no_kv_offload'])} {t} {r['avg_ts']:.1f} ± {r['stddev_ts']:.1f}")
for p in sorted(glob.glob(f"{R}/ocelot-*.json")):
    for r in rows(p):
        print(f"{os.path.basename(p)[:-5]} kv={r['type_k']} nkvo={int(not r['kv_offload'])} {r['test']} {r['tps_mean']:.1f} ± {r['tps_std']:.1f} ({r['ms_per_token']:.2f} ms/token)")
EOF
grep -v -e ggml_cuda_init -e "Device 0" -e "^bench" "$R/start.txt" 2>/dev/null
