package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/topology"
)

// runCLI runs the program in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadInput(t *testing.T) {
	notNS := filepath.Join(t.TempDir(), "not-a-netns")
	if err := os.WriteFile(notNS, []byte("plain file"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-netns")
	report := filepath.Join(t.TempDir(), "report.txt")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string // must appear in the one error line
	}{
		{"missing netns path", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--out", report}, exitUsage, missing},
		{"file that is not a netns", []string{"trace", "--netns", notNS, "--to", "10.244.2.2", "--out", report}, exitUsage, "not a network namespace"},
		{"bad IP", []string{"trace", "--netns", missing, "--to", "10.244.2.300"}, exitUsage, `--to "10.244.2.300": not an IP address`},
		{"IPv6 target passes to the netns check", []string{"trace", "--netns", missing, "--to", "fd00:10:244:2::2"}, exitUsage, missing},
		{"zoned IPv6 target", []string{"trace", "--netns", missing, "--to", "fe80::1%eth0"}, exitUsage, "zoned (link-local) target is not supported"},
		{"count 0", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--count", "0"}, exitUsage, "--count 0: must be at least 1"},
		{"no source", []string{"trace", "--to", "10.244.2.2"}, exitUsage, "--netns FILE or --pid PID"},
		{"no target", []string{"trace", "--netns", missing}, exitUsage, "--to IP"},
		{"unknown flag", []string{"trace", "--colour"}, exitUsage, "flag provided but not defined: -colour"},
		{"unknown format", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--format", "xml"}, exitUsage, `unknown output format "xml"`},
		{"size too small", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--size", "8"}, exitUsage, "--size 8"},
		{"dead pid", []string{"path", "--pid", "999999999", "--to", "10.244.2.2"}, exitUsage, "999999999"},
		{"unknown command", []string{"traec"}, exitUsage, `unknown command "traec"`},
		{"lab without subcommand", []string{"lab"}, exitUsage, "lab: say up, down, list or demo"},
		// The default node netns is ours, and so is the source: a
		// hostNetwork trace has no pod path to set against the node's.
		{"baseline from the node netns", []string{"trace", "--netns", "/proc/self/ns/net", "--to", "10.244.2.2", "--baseline", "--out", report}, exitUsage, "--baseline: the source netns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("got exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "cnitrace: error: ") {
				t.Errorf("got stderr %q, want exactly one 'cnitrace: error:' line", stderr)
			}
			if !strings.Contains(stderr, tc.wantMsg) {
				t.Errorf("got stderr %q, want it to mention %q", stderr, tc.wantMsg)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing: stdout holds only reports", stdout)
			}
			if _, err := os.Stat(report); !os.IsNotExist(err) {
				t.Errorf("a failed run left %s behind (stat: %v)", report, err)
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"trace", "--help"}, {"path", "-h"}} {
		code, stdout, _ := runCLI(t, args...)
		if code != exitOK || !strings.Contains(stdout, "cnitrace") {
			t.Errorf("%v: got code %d stdout %q, want 0 and usage on stdout", args, code, stdout)
		}
	}
}

func TestTraceHelpListsPingFlags(t *testing.T) {
	_, stdout, _ := runCLI(t, "trace", "--help")
	for _, flag := range []string{"-netns", "-pid", "-node-netns", "-to", "-count", "-interval", "-timeout", "-size", "-format", "-out", "-baseline"} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("trace --help does not document %s", flag)
		}
	}
}

// TestHints: an unsupported layout says where to read why and what to do
// meanwhile; an error without a known remedy gets no hint.
func TestHints(t *testing.T) {
	err := fmt.Errorf("discover: hairpin: %w", topology.ErrUnsupportedLayout)
	if h := hint(err); !strings.Contains(h, "docs/known-issues.md") {
		t.Errorf("hint(%v) = %q, want it to point at docs/known-issues.md", err, h)
	}
	if h := hint(errors.New("something else")); h != "" {
		t.Errorf("hint for an unknown error = %q, want none", h)
	}
}
