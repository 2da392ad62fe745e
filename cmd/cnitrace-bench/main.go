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
	trend   bool   // print the trend table of the saved results instead
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin/cnitrace", "cnitrace `binary` to measure (make build); a private copy is what runs")
	flag.StringVar(&c.results, "results", "bench/results", "`dir` for the JSON results")
	flag.BoolVar(&c.quick, "quick", false, "shorter runs (smoke test, figures are rougher)")
	flag.StringVar(&c.only, "sections", "", "run only these `sections`, e.g. 1,4 (default: all seven)")
	flag.BoolVar(&c.trend, "trend", false, "print the Markdown trend table of the headline ratios over the results in --results, and exit")
	flag.Parse()
	if c.trend {
		if err := printTrendDir(os.Stdout, c.results); err != nil {
			fmt.Fprintf(os.Stderr, "cnitrace-bench: error: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "cnitrace-bench: error: %v\n", err)
		os.Exit(1)
	}
}

// results is everything one run measured.
type results struct {
	Date      string           `json:"date"`
	Command   []string         `json:"command,omitempty"`
	Quick     bool             `json:"quick,omitempty"`
	Sections  []int            `json:"sections,omitempty"` // the sections run
	Machine   machine          `json:"machine"`
	Commit    commit           `json:"commit"`
	LoadStart string           `json:"loadavg_start,omitempty"` // /proc/loadavg: the machine is shared
	LoadEnd   string           `json:"loadavg_end,omitempty"`
	Accuracy  []accuracyRow    `json:"accuracy"`
	RTT       *rttFidelity     `json:"rtt_fidelity,omitempty"`
	Observer  *observerEffect  `json:"observer_effect,omitempty"`
	CPU       *cpuResult       `json:"cpu,omitempty"`
	Speed     *speedResult     `json:"speed,omitempty"`
	Memory    *memoryResult    `json:"memory,omitempty"`
	Transport *transportResult `json:"transport_fidelity,omitempty"`
}

func run(ctx context.Context, c config, stdout, stderr io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW) to build the netns lab")
	}
	tmp, err := os.MkdirTemp("", "cnitrace-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r := &results{Date: time.Now().UTC().Format(time.RFC3339), Command: os.Args, Quick: c.quick,
		Machine: thisMachine(), Commit: whatWasMeasured(c.bin), LoadStart: loadAvg()}
	if c.bin, err = privateCopy(c.bin, tmp); err != nil {
		return fmt.Errorf("cnitrace binary: %w (run make build)", err)
	}
	b := &bench{cfg: c, log: stderr}
	steps := []struct {
		name string
		fn   func(context.Context, *results) error
	}{
		{"accuracy", b.accuracy},
		{"rtt fidelity", b.rttFidelity},
		{"observer effect", b.observerEffect},
		{"cpu and capture under load", b.cpu},
		{"time to an answer, prober rate, scale", b.speed},
		{"memory", b.memory},
		{"tcp and udp fidelity", b.transport},
	}
	for i, s := range steps {
		if c.only != "" && !slices.Contains(strings.Split(c.only, ","), strconv.Itoa(i+1)) {
			continue
		}
		r.Sections = append(r.Sections, i+1)
		fmt.Fprintf(stderr, "cnitrace-bench: %d. %s...\n", i+1, s.name)
		if err := s.fn(ctx, r); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	r.LoadEnd = loadAvg()
	printTable(stdout, r)
	return save(c.results, r)
}

// save writes r to dir/<date and time>.json: every run keeps its file.
func save(dir string, r *results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, r.Date)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, t.Format("2006-01-02T150405Z")+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
