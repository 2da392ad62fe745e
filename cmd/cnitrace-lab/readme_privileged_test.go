package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's make demo sample from this run")

// The README's sample of make demo's output sits between these lines.
const (
	sampleStart = "<!-- make demo output: a real run, refreshed by go test ./cmd/cnitrace-lab -run READMEDemo -update-readme -->\n"
	sampleEnd   = "<!-- end of make demo output -->\n"
)

// sampleShape reduces demo output to what must not drift between runs:
// every line and its words, with the figures, namespace ids, generated
// names, paths, column padding and bar lengths masked. The verdict keeps
// only its start: which segment it names depends on the machine's noise.
func sampleShape(out string) []string {
	masks := []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`cnitrace-[0-9a-f]{6}`), "LAB"},
		{regexp.MustCompile(`veth[0-9a-f]{8}`), "VETH"},
		{regexp.MustCompile(` with \S*cnitrace$`), " with BIN"},
		{regexp.MustCompile(`[0-9]+(\.[0-9]+)?`), "N"},
		{regexp.MustCompile(` *#*$`), ""}, // the bars: their lengths are figures too
		{regexp.MustCompile(`(verdict:) .*`), "$1 ..."},
		{regexp.MustCompile(` +`), " "},
	}
	var shape []string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		for _, m := range masks {
			line = m.re.ReplaceAllString(line, m.with)
		}
		shape = append(shape, strings.TrimSpace(line))
	}
	return shape
}

// readmeSample returns the README, the sample in it (unindented) and where
// the sample's indented block starts and ends.
func readmeSample(t *testing.T) (readme, sample string, from, to int) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme = string(b)
	from = strings.Index(readme, sampleStart)
	to = strings.Index(readme, sampleEnd)
	if from < 0 || to < from {
		t.Fatalf("README.md has no make demo sample between %q and %q", sampleStart, sampleEnd)
	}
	from += len(sampleStart)
	var lines []string
	for _, l := range strings.Split(strings.Trim(readme[from:to], "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	return readme, strings.Join(lines, "\n") + "\n", from, to
}

// TestPrivilegedREADMEDemoSample runs make demo's command and checks the
// README shows what it prints, line for line, figures aside; with
// -update-readme it writes this run's output into the README instead.
func TestPrivilegedREADMEDemoSample(t *testing.T) {
	labtest.Require(t)
	labBin, _ := buildBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, labBin, "demo")
	cmd.Dir = filepath.Dir(filepath.Dir(labBin)) // as make demo runs it: ./bin/cnitrace-lab from the checkout
	cmd.Stdout, cmd.Stderr = &out, &out          // stderr's progress lines come first, as on a terminal
	if err := cmd.Run(); err != nil {
		t.Fatalf("cnitrace-lab demo: %v\n%s", err, out.String())
	}
	readme, sample, from, to := readmeSample(t)
	if *updateREADME {
		var block strings.Builder
		fmt.Fprintln(&block)
		for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
			fmt.Fprintln(&block, strings.TrimRight("    "+l, " "))
		}
		fmt.Fprintln(&block)
		if err := os.WriteFile("../../README.md", []byte(readme[:from]+block.String()+readme[to:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, want := sampleShape(out.String()), sampleShape(sample)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README.md's make demo sample does not match a real run (refresh it with -update-readme):\nREADME:\n%s\nthis run:\n%s",
			strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}
