# ocelot — build, test, demo.
#
#   make demo   quantize the shipped model (trained on Go's source) and
#               complete a Go prompt with it
#   make test   the whole test suite (what CI runs)

GO      ?= go
BIN     := bin/ocelot
CACHE   := .cache/models
TINY    := $(CACHE)/demo-tiny.gguf
export CGO_ENABLED ?= 0

.PHONY: build test demo demo-random bench conformance lint clean

build:
	$(GO) build -o $(BIN) ./cmd/ocelot

# The test suite. Fuzz targets run their seed corpora here; OpenCL tests
# skip with a reason when no OpenCL device exists (CI sets
# OCELOT_REQUIRE_OPENCL=1 so that they fail instead).
test:
	$(GO) test -count=1 -timeout 20m ./...

$(TINY): $(wildcard synth/*.go synth/corpus/*.txt) | build
	@mkdir -p $(CACHE)
	$(BIN) gen --preset tiny --seed 1 -o $(TINY)

# The main job, on the small model the repository ships (trained on Go's
# own source, scripts/train and docs/MODEL.md): quantize its F16 file to
# Q4_0, then complete a Go prompt with the original analysis's batch
# settings and print the prompt-evaluation report.
GOMODEL := testdata/model/ocelot-go-f16.gguf
GOQ4    := $(CACHE)/ocelot-go-q4_0.gguf
demo: build
	@mkdir -p $(CACHE)
	$(BIN) quantize $(GOMODEL) $(GOQ4) q4_0
	$(BIN) run -m $(GOQ4) -c 512 -b 64 -ub 8 -n 64 --temp 0 -e \
		-p 'package strings\n\n// Reverse returns s with its runes in reverse order.\nfunc Reverse(s string) string {\n'

# The former demo, on random weights of a tiny shape that ocelot generates
# itself (the text is noise).
demo-random: build $(TINY)
	$(BIN) info -m $(TINY)
	$(BIN) run -m $(TINY) -c 512 -b 64 -ub 8 -n 32 --temp 0 \
		-p "The ocelot is a wild cat of the Americas. It hunts at night, and it"

# A short benchmark on the machine at hand: the tiny and 1b presets (1b
# with --fast weights), prompt processing and generation, on every backend
# that works here. docs/PERFORMANCE.md has the full study.
BENCH1B := $(CACHE)/bench-1b-fast.gguf
$(BENCH1B): | build
	@mkdir -p $(CACHE)
	$(BIN) gen --preset 1b --fast -o $(BENCH1B)

bench: build $(TINY) $(BENCH1B)
	$(BIN) bench -m $(TINY) -p 128 -n 32 -r 2 --backend cpu
	$(BIN) bench -m $(BENCH1B) -p 64 -n 8 -r 1 --backend auto -ngl auto

# Every backend against the reference engine, op by op and end to end, on
# models it generates itself.
conformance: build
	$(BIN) conformance --backend all $(CONFORMANCE_FLAGS)

lint:
	@out=$$(gofmt -l . | grep -v '^testdata/' || true); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin .cache
