# cnitrace: see README.md. Everything here runs as root on a Debian machine
# with the packages .ci/run installs.
GO       ?= go
BIN      := bin/cnitrace
PKGS     := ./...
STATICCHECK_VERSION := v0.8.2

.PHONY: all build demo test test-unit lint bench clean

all: build

# One static binary to copy onto a node: no cgo.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN) ./cmd/cnitrace

# Build the two-node lab in network namespaces, trace pod -> remote pod,
# print the hop breakdown, remove the lab.
demo: build
	./$(BIN) lab demo

# Unit tests and, as root, the privileged lab tests (they skip, saying so,
# when not root; with CI=true they fail instead of skipping). Packages run one
# at a time (-p 1): the lab tests compare latencies with ping's, and other
# packages' tests running beside them on a 2-core machine are noise.
test:
	gofmt -l . | (! grep .) || (echo 'gofmt: the files above are not formatted' >&2; exit 1)
	$(GO) vet $(PKGS)
	CGO_ENABLED=0 $(GO) build $(PKGS)
	GOOS=darwin $(GO) build $(PKGS)
	$(GO) test -race -count=1 -p 1 -timeout 12m $(PKGS)

# Tests that need no root.
test-unit:
	$(GO) test -count=1 -run 'Test[^P]|TestP[^r]|Example|Fuzz' $(PKGS)

# Benchmarks: Go benchmarks of the hot paths, then the lab accuracy benchmark
# (root), which prints one table and writes bench/results/<date>.json.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./capture ./report ./probe
	$(GO) run ./cmd/cnitrace-bench --bin $(BIN)

lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

clean:
	rm -rf bin
