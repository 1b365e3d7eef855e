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
