# Sourced by the device scripts: the NVIDIA OpenCL driver registered with
# the ICD loader, the carried binary ($B), the folder of generated models
# ($M, with preset NAME made by `model NAME`) and the GPU's device index
# ($dev). Needs $root, the repository root.
icd=$(mktemp -d)
echo libnvidia-opencl.so.1 >"$icd/nvidia.icd"
export OCL_ICD_VENDORS=$icd
B=$root/.devrun/ocelot
M=/tmp/peer-models
mkdir -p "$M"
model() { [ -f "$M/$1.gguf" ] || "$B" gen --preset "$1" --fast -o "$M/$1.gguf" >/dev/null; }
dev=$("$B" devices --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"]; print([x["index"] for x in d if x["type"]=="GPU"][0])')

# llama_build TARGET...: llama.cpp release 80fb11a (the carried
# .devrun/llama-src.tar.xz, `scripts/device/peer.sh pack`) built with CUDA
# for sm_90 in /tmp/llsrc/build; prints cmake's and ninja's output. The
# binaries land in /tmp/llsrc/build/bin. llama-bench alone takes about 4
# minutes on 16 cores, llama-server about a minute more.
llama_build() {
	local L=/tmp/llsrc
	[ -d $L ] || tar xJf "$root/.devrun/llama-src.tar.xz" -C /tmp
	export PATH=/usr/local/cuda/bin:$PATH
	cmake -S $L -B $L/build -G Ninja -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
		-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DCMAKE_BUILD_TYPE=Release &&
		cmake --build $L/build --target "$@" -j "$(nproc)"
}
