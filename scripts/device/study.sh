#!/usr/bin/env bash
# The GPU study of docs/PERFORMANCE.md and the NVIDIA conformance run,
# for the device machine (an NVIDIA H100/H200 without Go). Build first,
# here:
#
#   CGO_ENABLED=0 go build -o .devrun/ocelot ./cmd/ocelot
#   CGO_ENABLED=0 go test -c -o .devrun/opencl.test ./plugin/opencl
#
# then run on the device, with .devrun carried:  scripts/device/study.sh PART
# PART is "conformance", "bench", "study" or "all" (the three in a row,
# about 7 minutes on an H200). Results go to $OUT/study.tar.gz (or
# ./out), one file per step, packed again after every step so that a
# run cut short keeps what it made.
set -u
part=${1:?usage: study.sh conformance|bench|study|all}
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
R=$(mktemp -d)
pack() { tar -C "$R" -czf "$OUT/study.tar.gz" .; }
B=$PWD/.devrun/ocelot
# NVIDIA's OpenCL driver is installed but not registered with the loader.
icd=$(mktemp -d)
echo libnvidia-opencl.so.1 >"$icd/nvidia.icd"
export OCL_ICD_VENDORS=$icd
M=$PWD/.devrun/models
mkdir -p "$M"
step() { # name, timeout in s, command...
	local name=$1 t=$2
	shift 2
	echo "== $name ($(date +%T))"
	timeout "$t" "$@" >"$R/$name.out" 2>"$R/$name.err"
	echo "   rc=$? $(tail -1 "$R/$name.out")"
	pack
}
models() {
	[ -f "$M/1b.gguf" ] || step gen-1b 120 "$B" gen --preset 1b --fast -o "$M/1b.gguf"
	[ -f "$M/8b.gguf" ] || step gen-8b 200 "$B" gen --preset 8b --fast -o "$M/8b.gguf"
}
conformance() {
	# The OpenCL op and end-to-end tests on the GPU, the GEMV timing and
	# the kernel profile, then the conformance runner (CPU backend on this
	# machine's CPU, and the GPU).
	(cd plugin/opencl && OCELOT_REQUIRE_OPENCL=1 timeout 200 ../../.devrun/opencl.test -test.v >"$R/opencl-tests.out" 2>&1; echo "opencl tests rc=$?")
	(cd plugin/opencl && OCELOT_OPENCL_BENCH=1 OCELOT_OPENCL_GEMV_TOKENS=1,4 timeout 60 ../../.devrun/opencl.test -test.run 'TestGEMVSpeed$' -test.v >"$R/gemv.out" 2>&1; echo "gemv rc=$?")
	for p in 1b 8b; do
		(cd plugin/opencl && OCELOT_OPENCL_BENCH=$p timeout 120 ../../.devrun/opencl.test -test.run 'TestSpeed$' -test.v >"$R/speed-$p.out" 2>&1; echo "speed $p rc=$?")
	done
	step conformance 240 "$B" conformance --backend all --quick -o table
}
bench() {
	for m in 1b 8b; do
		for kv in f16 q8_0 q4_0; do
			step "bench-$m-$kv" 150 "$B" bench -m "$M/$m.gguf" -p 512 -n 128 -ngl 99 -ctk $kv -ctv $kv -r 2 -o json --backend opencl
		done
	done
	# Cold and warm start: the program built and cached, then loaded.
	rm -rf "$HOME/.cache/ocelot"
	step start-cold 120 bash -c "time $B run -m $M/8b.gguf -p hi -n 1 --temp 0"
	step start-warm 120 bash -c "time $B run -m $M/8b.gguf -p hi -n 1 --temp 0"
}
study() {
	# The original analysis: n_ctx 512, n_batch 64, n_ubatch 8, 31 GPU layers,
	# 8 threads, a 327-token prompt; KV on the device vs in host memory.
	step analysis 200 "$B" bench -m "$M/8b.gguf" -p 327 -n 0 -b 64 -ub 8 -ngl 31 -t 8 -nkvo 0,1 -r 1 -o json --report --backend opencl
	step good-nkvo 120 "$B" bench -m "$M/8b.gguf" -p 327 -n 0 -b 512 -ub 512 -ngl 99 -t 8 -nkvo 0,1 -r 1 -o json --backend opencl
	step batches-64 120 "$B" bench -m "$M/8b.gguf" -p 327 -n 0 -b 64 -ub 8,64 -ngl 99 -t 8 -r 1 -o json --backend opencl
	step batches-512 120 "$B" bench -m "$M/8b.gguf" -p 512 -n 0 -b 512 -ub 128,512 -ngl 99 -t 8 -r 1 -o json --backend opencl
	step ngl 240 "$B" bench -m "$M/8b.gguf" -p 64 -n 0 -b 64 -ub 8 -ngl 0,8,16,24,31,32,33 -t 8 -r 1 -o json --backend opencl
	step auto 200 "$B" bench -m "$M/8b.gguf" -p 327 -n 32 -b 64 -t 8 -ngl 0,auto -ub 8,auto -r 1 -o json
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$R/gpu.txt" 2>&1
step devices 60 "$B" devices
case $part in
conformance) conformance ;;
bench) models; bench ;;
study) models; study ;;
all) models; conformance; bench; study ;;
*) echo "unknown part $part"; exit 2 ;;
esac
pack
echo "done $(date +%T)"
