package main

import (
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
