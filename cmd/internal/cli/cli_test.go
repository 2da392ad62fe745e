package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		hint     string
		wantCode int
		wantOut  string
	}{
		{"nil", nil, "", ExitOK, ""},
		{"help", fmt.Errorf("trace: %w", flag.ErrHelp), "", ExitOK, ""},
		{"usage", Usagef("--to %q: not an IP address", "x"), "", ExitUsage, "prog: error: --to \"x\": not an IP address\n"},
		{"wrapped usage", fmt.Errorf("resolve: %w", Usagef("bad")), "", ExitUsage, "prog: error: resolve: bad\n"},
		{"failure with a hint", errors.New("socket: operation not permitted"), "grant it", ExitFailure, "prog: error: socket: operation not permitted\nhint: grant it\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := Report("prog", tc.err, tc.hint, &stderr); got != tc.wantCode {
				t.Errorf("got exit code %d, want %d", got, tc.wantCode)
			}
			if stderr.String() != tc.wantOut {
				t.Errorf("got stderr %q, want %q", stderr.String(), tc.wantOut)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	newFS := func() (*flag.FlagSet, *int) {
		fs := NewFlagSet("trace")
		return fs, fs.Int("count", 30, "number of probes")
	}
	fs, count := newFS()
	if err := ParseFlags("prog", fs, []string{"--count", "5"}, "[flags]", &bytes.Buffer{}); err != nil || *count != 5 {
		t.Errorf("--count 5: got %v, count %d", err, *count)
	}
	for _, args := range [][]string{{"--colour"}, {"--count", "x"}, {"extra"}} {
		fs, _ := newFS()
		err := ParseFlags("prog", fs, args, "[flags]", &bytes.Buffer{})
		if !IsUsage(err) || !strings.Contains(err.Error(), "see 'prog trace --help'") {
			t.Errorf("%v: got %v, want a usage error pointing at 'prog trace --help'", args, err)
		}
	}
	fs, _ = newFS()
	var stdout bytes.Buffer
	err := ParseFlags("prog", fs, []string{"--help"}, "[flags]", &stdout)
	if !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(stdout.String(), "Usage: prog trace [flags]\n") || !strings.Contains(stdout.String(), "-count int") {
		t.Errorf("--help: got %v and %q, want flag.ErrHelp and the usage on stdout", err, stdout.String())
	}
}
