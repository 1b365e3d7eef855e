# ocelot — build, test, demo.
#
#   make demo   generate a tiny model and show what ocelot does with it
#   make test   the whole test suite (what CI runs)

GO      ?= go
BIN     := bin/ocelot
CACHE   := .cache/models
TINY    := $(CACHE)/demo-tiny.gguf
export CGO_ENABLED ?= 0

.PHONY: build test demo bench conformance lint clean

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

# The main job on a model ocelot generates itself: evaluate a prompt with
# the original analysis's batch settings, generate 32 tokens, and print the
# prompt-evaluation report. (The weights are random: the text is noise.)
demo: build $(TINY)
	$(BIN) info -m $(TINY)
	$(BIN) run -m $(TINY) -c 512 -b 64 -ub 8 -n 32 --temp 0 \
		-p "The ocelot is a wild cat of the Americas. It hunts at night, and it"

# Benchmarks. `ocelot bench` arrives with issue 8; until then this runs the
# package benchmarks that exist, briefly.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 200ms ./quant ./gguf ./tokenizer

# `ocelot conformance` arrives with issue 7 (every backend against ref).
conformance:
	@echo "conformance: the runner arrives with issue 7; nothing to compare yet (only the reference engine exists)"

lint:
	@out=$$(gofmt -l . | grep -v '^testdata/' || true); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin .cache
