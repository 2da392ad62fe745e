package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// jsonReport is the part of cnitrace's JSON report (docs/report-format.md)
// these tests read, decoded from the binary's output.
type jsonReport struct {
	SchemaVersion int `json:"schema_version"`
	Probes        struct{ Sent, Received int }
	Segments      []struct {
		From, To, Direction, Class string
		Lost                       int
		US                         *struct{ P50, Max float64 } `json:"us"`
	}
}

// buildBinaries builds cnitrace-lab and cnitrace as shipped (static, no
// cgo, no race detector) into one directory, bin/ under a temporary one,
// as make build does, and returns their paths.
func buildBinaries(t *testing.T) (labBin, traceBin string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{".", "../cnitrace"} {
		cmd := exec.Command("go", "build", "-o", dir, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	return filepath.Join(dir, "cnitrace-lab"), filepath.Join(dir, "cnitrace")
}

// traceBinary runs cnitrace trace across l and decodes its JSON report.
func traceBinary(t *testing.T, bin string, l *lab.Lab, extra ...string) jsonReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(append([]string{"trace", "--format", "json"}, l.TraceArgs()...), extra...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	var r jsonReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("not the JSON report: %v\n%s", err, out)
	}
	return r
}

// demoLab finds the name of the lab a demo built in its progress lines.
var demoLab = regexp.MustCompile(`lab (\S+) is up`)

// TestPrivilegedDemoRunsTheShippedBinary: demo finds the cnitrace next to
// it, runs its trace across the lab it built, passes its report through on
// stdout and its exit code out (3: the path lost probes), and removes the
// lab.
func TestPrivilegedDemoRunsTheShippedBinary(t *testing.T) {
	labtest.Require(t)
	labBin, _ := buildBinaries(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantLost bool
	}{
		{"clean", nil, cli.ExitOK, false},
		{"every request dropped", []string{"--loss", "forward-request=1"}, cli.ExitFinding, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append([]string{"demo", "--count", "10", "--interval", "10ms", "--timeout", "300ms", "--format", "json"}, tc.args...)
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, labBin, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			m := demoLab.FindStringSubmatch(stderr.String())
			if m == nil {
				t.Fatalf("demo did not say which lab it built; stderr:\n%s", stderr.String())
			}
			t.Cleanup(func() { lab.Down(m[1]) }) // only if demo failed to remove it
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			var r jsonReport
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.SchemaVersion == 0 {
				t.Fatalf("stdout is not cnitrace's JSON report (%v):\n%s", err, stdout.String())
			}
			if r.Probes.Sent != 10 || (r.Probes.Received < 10) != tc.wantLost {
				t.Errorf("report: %d sent, %d received; want 10 sent, lost=%v", r.Probes.Sent, r.Probes.Received, tc.wantLost)
			}
			if !strings.Contains(stderr.String(), "cnitrace: path ") {
				t.Errorf("stderr shows no progress line of cnitrace itself:\n%s", stderr.String())
			}
			labtest.CheckGone(t, m[1])
		})
	}
}
