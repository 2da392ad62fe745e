package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
)

// TestListenUsage: listen's errors and --help name its own flags: --from,
// the pod the probes go to, and no --to.
func TestListenUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    string // the error line starts with it
		notWant string
	}{
		{"zoned --from", []string{"--netns", "/run/netns/x", "--from", "fe80::1%eth0"}, "cnitrace: error: --from fe80::1%eth0: a zoned (link-local) source is not supported", "--to"},
		{"loopback --from", []string{"--netns", "/run/netns/x", "--from", "127.0.0.1"}, "cnitrace: error: --from 127.0.0.1: a loopback address", "--to"},
		{"multicast --from", []string{"--netns", "/run/netns/x", "--from", "224.0.0.1"}, "cnitrace: error: --from 224.0.0.1: a multicast address", "--to"},
		{"no pod", []string{"--from", "10.244.1.2"}, "cnitrace: error: say which pod the probes go to: --pod [NAMESPACE/]NAME, --netns FILE or --pid PID", "probe from"},
		{"--to", []string{"--netns", "/run/netns/x", "--to", "10.244.1.2"}, "cnitrace: error: listen --to 10.244.1.2: listen takes --from IP", ""},
		{"--to=", []string{"--netns", "/run/netns/x", "--to=10.244.1.2"}, "cnitrace: error: listen --to 10.244.1.2: listen takes --from IP", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"listen"}, tt.args...)...)
			if code != cli.ExitUsage || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, cli.ExitUsage)
			}
			if !strings.HasPrefix(stderr, tt.want) || (tt.notWant != "" && strings.Contains(stderr, tt.notWant)) {
				t.Errorf("stderr %q, want it to start with %q and not say %q", stderr, tt.want, tt.notWant)
			}
		})
	}
	_, help, _ := runCLI(t, "listen", "--help")
	for _, bad := range []string{"\n  -to ", "to probe from", "not for listen"} {
		if strings.Contains(help, bad) {
			t.Errorf("listen --help says %q:\n%s", bad, help)
		}
	}
	for _, cmd := range []string{"trace", "path"} {
		if _, help, _ := runCLI(t, cmd, "--help"); !strings.Contains(help, "-to IP") || !strings.Contains(help, "the pod to probe from") {
			t.Errorf("%s --help lost --to or its pod's wording:\n%s", cmd, help)
		}
	}
}

// TestListenReadyFile: --ready-file is checked before anything is armed
// (a usage error naming it), a stale one is removed at the start, and
// none is left behind when listen fails.
func TestListenReadyFile(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "ready")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missingNetns := filepath.Join(dir, "no-netns")
	listen := func(ready string) (int, string) {
		code, _, stderr := runCLI(t, "listen", "--netns", missingNetns, "--from", "10.244.1.2", "--quiet", "--out", filepath.Join(dir, "l.json"), "--ready-file", ready)
		return code, stderr
	}
	// A run that fails after its --ready-file was checked: the stale
	// file is gone, and nothing is left.
	if code, stderr := listen(stale); code != cli.ExitUsage || !strings.Contains(stderr, "no-netns") {
		t.Errorf("missing --netns: exit code %d, stderr %q; want %d naming the netns", code, stderr, cli.ExitUsage)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale --ready-file is still there after a failed run: %v", err)
	}
	for _, tt := range []struct{ name, ready, want string }{
		{"no such directory", filepath.Join(dir, "no-dir", "ready"), "--ready-file " + filepath.Join(dir, "no-dir", "ready") + ": its directory does not exist"},
		{"a directory", dir, "--ready-file " + dir + ": is a directory (name a file in it, such as " + filepath.Join(dir, "ready") + ")"},
		{"stdout", "-", "--ready-file -: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := listen(tt.ready)
			if code != cli.ExitUsage || !strings.HasPrefix(stderr, "cnitrace: error: "+tt.want) {
				t.Errorf("exit code %d, stderr %q; want %d and an error starting %q", code, stderr, cli.ExitUsage, tt.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("%s left behind in %s", e.Name(), dir)
	}
}
