package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
)

// runCLI runs the program in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpNamesEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}} {
		code, stdout, _ := runCLI(t, args...)
		if code != cli.ExitOK {
			t.Errorf("%v: exit code %d, want 0", args, code)
		}
		for _, want := range []string{"cnitrace-lab up", "cnitrace-lab fault", "cnitrace-lab down", "cnitrace-lab list", "cnitrace-lab demo", "--layout", "--service-mode", "--backends", "--deny icmp"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%v: usage does not show %q:\n%s", args, want, stdout)
			}
		}
	}
	if code, _, stderr := runCLI(t); code != cli.ExitUsage || !strings.Contains(stderr, "no command given") {
		t.Errorf("no arguments: got %d %q, want exit 2 and 'no command given'", code, stderr)
	}
}

// --layout takes the layouts by name; --topology, its old name, still
// works but says it is going away. Both are checked before anything is
// built, so a bad value needs no root.
func TestLayoutFlag(t *testing.T) {
	for _, cmd := range []string{"up", "demo"} {
		code, stdout, _ := runCLI(t, cmd, "--help")
		if code != cli.ExitOK || !strings.Contains(stdout, "-layout flannel") {
			t.Errorf("%s --help: exit %d, want it to document --layout:\n%s", cmd, code, stdout)
		}
		code, _, stderr := runCLI(t, cmd, "--layout", "calico")
		if code != cli.ExitUsage || !strings.Contains(stderr, `unknown layout "calico" (want flannel or routed)`) {
			t.Errorf("%s --layout calico: got %d %q, want exit 2 naming the layouts", cmd, code, stderr)
		}
		code, _, stderr = runCLI(t, cmd, "--topology", "calico")
		if code != cli.ExitUsage || !strings.Contains(stderr, "--topology is now --layout") || !strings.Contains(stderr, `unknown layout "calico"`) {
			t.Errorf("%s --topology calico: got %d %q, want the rename note and the same usage error", cmd, code, stderr)
		}
	}
}

// demo runs the cnitrace binary: one that is not there is a usage error
// found before any lab is built.
func TestDemoNeedsTheCnitraceBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "cnitrace")
	code, stdout, stderr := runCLI(t, "demo", "--cnitrace", missing)
	if code != cli.ExitUsage || !strings.Contains(stderr, "--cnitrace") || !strings.Contains(stderr, missing) {
		t.Errorf("got %d %q, want exit 2 naming --cnitrace and %s", code, stderr, missing)
	}
	if stdout != "" {
		t.Errorf("got stdout %q, want nothing", stdout)
	}
}
