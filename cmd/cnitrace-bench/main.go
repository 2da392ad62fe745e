//go:build linux

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	bin     string // the cnitrace binary under test
	results string // directory for <date>.json
	quick   bool   // shorter runs, for a smoke test
	only    string // comma-separated section numbers; empty: all
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin/cnitrace", "cnitrace `binary` to measure (make build)")
	flag.StringVar(&c.results, "results", "bench/results", "`dir` for the JSON results")
	flag.BoolVar(&c.quick, "quick", false, "shorter runs (smoke test, figures are rougher)")
	flag.StringVar(&c.only, "sections", "", "run only these `sections`, e.g. 1,4 (default: all six)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "cnitrace-bench: error: %v\n", err)
		os.Exit(1)
	}
}

// results is everything one run measured.
type results struct {
	Date     string          `json:"date"`
	Machine  machine         `json:"machine"`
	Accuracy []accuracyRow   `json:"accuracy"`
	RTT      *rttFidelity    `json:"rtt_fidelity,omitempty"`
	Observer *observerEffect `json:"observer_effect,omitempty"`
	Load     *loadResult     `json:"capture_under_load,omitempty"`
	Scale    *scaleResult    `json:"scale,omitempty"`
	Memory   *memoryResult   `json:"memory,omitempty"`
}

type machine struct {
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
}

func run(ctx context.Context, c config, stdout, stderr io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW) to build the netns lab")
	}
	if _, err := os.Stat(c.bin); err != nil {
		return fmt.Errorf("cnitrace binary: %w (run make build)", err)
	}
	r := &results{Date: time.Now().UTC().Format(time.RFC3339), Machine: thisMachine()}
	b := &bench{cfg: c, log: stderr}
	steps := []struct {
		name string
		fn   func(context.Context, *results) error
	}{
		{"accuracy", b.accuracy},
		{"rtt fidelity", b.rttFidelity},
		{"observer effect", b.observerEffect},
		{"capture under load", b.captureUnderLoad},
		{"scale", b.scale},
		{"memory", b.memory},
	}
	for i, s := range steps {
		if c.only != "" && !slices.Contains(strings.Split(c.only, ","), strconv.Itoa(i+1)) {
			continue
		}
		fmt.Fprintf(stderr, "cnitrace-bench: %s...\n", s.name)
		if err := s.fn(ctx, r); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	printTable(stdout, r)
	return save(c.results, r)
}

func thisMachine() machine {
	var u syscall.Utsname
	syscall.Uname(&u)
	kernel := ""
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		kernel += string(rune(c))
	}
	return machine{Kernel: kernel, CPUs: runtime.NumCPU(), Go: runtime.Version()}
}

func save(dir string, r *results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, time.Now().UTC().Format("2006-01-02")+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
