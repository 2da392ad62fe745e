# cnitrace: see README.md. A newcomer on a fresh Debian machine runs, as root,
# `make demo` and `make test`; both install what they need first.
GO       ?= go
BIN      := bin
PKGS     := ./...
STATICCHECK_VERSION := v0.8.2
# Debian puts Go in /usr/local/go; a fresh root shell may not have it on PATH.
export PATH := $(PATH):/usr/local/go/bin

# What the lab and the tests run, as command-or-file:Debian-package pairs.
# gcc and libc6-dev are for `go test -race` (cgo); capsh and setcap (libcap2-bin,
# in /usr/sbin) for the test that enforces docs/privileges.md; containerd, runc
# and the reference CNI plugins for the real-runtime tests (topology/lab/containerd:
# they run inside lab namespaces; installing containerd starts no daemon);
# tshark reads the pcapng of --pcap back, headless chromium (with a font to
# draw the screenshot with) loads the HTML report, nft is what --bundle runs
# for the ruleset; dnsmasq (the binary alone: dnsmasq-base starts no service in
# the host's namespace) is the lab pods' DNS server and dig times DNS queries
# against the UDP probes.
TEST_TOOLS := iptables:iptables ping:iputils-ping nsenter:util-linux unshare:util-linux ip:iproute2 \
	tshark:tshark chromium:chromium /usr/share/fonts/truetype/liberation:fonts-liberation nft:nftables \
	dnsmasq:dnsmasq-base dig:bind9-dnsutils \
	gcc:gcc /usr/include/stdio.h:libc6-dev capsh:libcap2-bin setcap:libcap2-bin \
	containerd:containerd ctr:containerd containerd-shim-runc-v2:containerd runc:runc \
	/usr/lib/cni/bridge:containernetworking-plugins /usr/lib/cni/host-local:containernetworking-plugins \
	/usr/lib/cni/loopback:containernetworking-plugins

.PHONY: all build demo deps test test-unit lint bench clean

all: build

# Two static binaries, no cgo: cnitrace is what an SRE copies onto a node
# (no lab code in it); cnitrace-lab builds the emulated cluster and runs the
# demo with the cnitrace next to it. -buildvcs=auto stamps the commit, which
# the report's run block names, even where GOFLAGS says -buildvcs=false.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -ldflags='-s -w' -o $(BIN)/ ./cmd/cnitrace ./cmd/cnitrace-lab

# Build the two-node lab in network namespaces, run bin/cnitrace trace from
# pod to remote pod, print its hop breakdown, remove the lab.
demo: deps build
	./$(BIN)/cnitrace-lab demo

# Install, as root with apt-get, the commands above that are missing, or
# say in one line which ones to install. Where systemd runs, containerd.service
# is masked first, so that no containerd starts in the host's namespaces.
deps:
	@command -v $(GO) >/dev/null || { echo "make: needs Go $$(sed -n 's/^go //p' go.mod) on PATH or in /usr/local/go" >&2; exit 1; }
	@missing=$$(for t in $(TEST_TOOLS); do c=$${t%%:*}; command -v $$c >/dev/null 2>&1 || [ -e $$c ] || echo $${t#*:}; done | sort -u); \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "make: the tests need these Debian packages: apt-get install" $$missing >&2; exit 1; fi; \
	echo "make: installing" $$missing; \
	if [ -d /run/systemd/system ] && echo "$$missing" | grep -qw containerd; then \
		systemctl mask containerd.service; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null

# Formatting, vet, staticcheck, both builds, then every test, the privileged
# lab tests too (as root; they skip, saying so, when not root, and fail
# instead with CI=true). Packages run one at a time (-p 1): the lab tests
# compare latencies with ping's, and other packages' tests running beside
# them on a 2-core machine are noise.
test: deps lint
	$(GO) test -race -count=1 -p 1 -timeout 12m $(PKGS)

lint:
	@unformatted=$$(gofmt -l .); [ -z "$$unformatted" ] || { echo "gofmt: not formatted: $$unformatted" >&2; exit 1; }
	$(GO) vet $(PKGS)
	CGO_ENABLED=0 $(GO) build $(PKGS)
	GOOS=darwin $(GO) build $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

# Tests that need no root.
test-unit:
	$(GO) test -count=1 -run 'Test[^P]|TestP[^r]|Example|Fuzz' $(PKGS)

# What the lab benchmark compares cnitrace with, beyond TEST_TOOLS, as
# command:Debian-package pairs: tcpdump (five per path, the CPU comparison),
# hping3 (TCP SYN round trips beside the TCP probes) and perf (section 1's
# reference: the kernel's net tracepoints time the other segments). Installed
# by `make bench` only, so that `make test` does not grow.
BENCH_TOOLS := tcpdump:tcpdump hping3:hping3 perf:linux-perf

# Benchmarks: Go benchmarks of the hot paths, then the lab benchmark (root),
# which prints one table and writes bench/results/<date and time>.json;
# `go run ./cmd/cnitrace-bench --trend` prints the trend of those files.
# (deps, a prerequisite, installs them: a target-specific variable reaches
# the prerequisites too.)
bench: TEST_TOOLS += $(BENCH_TOOLS)
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./capture ./report ./probe
	$(GO) run ./cmd/cnitrace-bench --bin $(BIN)/cnitrace

clean:
	rm -rf $(BIN)
