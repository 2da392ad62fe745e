package main

import (
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
)

// Bad fault flags are usage errors (exit 2) on one line that names the
// flag and the forms it takes; none of these reach a lab, so no root.
func TestLabFaultFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantMsg []string // each must appear in the one error line
	}{
		{"unknown place", []string{"up", "--delay", "pod=2ms"}, []string{"-delay", `unknown place "pod"`, "network-request", "2ms, 500us or 0"}},
		{"delay without unit", []string{"up", "--delay", "network=2"}, []string{"-delay", `bad duration "2"`}},
		{"delay too long", []string{"up", "--delay", "network=2s"}, []string{"-delay", "at most 1s"}},
		{"delay as a forward fault", []string{"up", "--delay", "forward-request=1ms"}, []string{"-delay", `unknown place "forward-request"`}},
		{"no equals", []string{"up", "--loss", "network"}, []string{"-loss", "WHERE=P", "forward-request"}},
		{"loss above 100%", []string{"up", "--loss", "network=150%"}, []string{"-loss", `bad fraction "150%"`, "0.05 or 5%"}},
		{"loss as a delay", []string{"up", "--loss", "forward=1ms"}, []string{"-loss", "0.05 or 5%"}},
		{"too many rules", []string{"up", "--bloat", "70000"}, []string{"--bloat", "0 to 65536"}},
		{"negative rules", []string{"up", "--bloat", "-1"}, []string{"--bloat", "0 to 65536"}},
		{"demo checks faults too", []string{"demo", "--loss", "forward=-1"}, []string{"-loss", "0.05 or 5%"}},
		{"fault without faults", []string{"fault", "cnitrace-ab12cd"}, []string{"give faults to set, or --clear"}},
		{"fault and clear", []string{"fault", "cnitrace-ab12cd", "--clear", "--delay", "network=1ms"}, []string{"give faults to set, or --clear"}},
		{"fault with a bad flag", []string{"fault", "cnitrace-ab12cd", "--delay", "network=fast"}, []string{"cnitrace-lab fault --help", "-delay"}},
		{"fault with a bad name", []string{"fault", "../etc", "--clear"}, []string{`invalid lab name "../etc"`}},
		{"up with a bad name", []string{"up", "--name", "Lab_1"}, []string{`invalid lab name "Lab_1"`}},
		{"down with a bad name", []string{"down", "../etc"}, []string{`invalid lab name "../etc"`}},
		{"wire without a lab", []string{"wire", "--delay", "network=1ms"}, []string{"--lab NAME"}},
		{"wire with forward loss", []string{"wire", "--lab", "cnitrace-ab12cd", "--loss", "forward=0.1"}, []string{"only network delays and losses"}},
		{"unknown command", []string{"break"}, []string{`unknown command "break"`, "fault"}},
		{"unknown service mode", []string{"up", "--service-mode", "ipvs"}, []string{"-service-mode", `unknown service mode "ipvs" (want iptables, nftables)`}},
		{"the old dnat service mode", []string{"up", "--service-mode", "dnat"}, []string{"-service-mode", `unknown service mode "dnat" (want iptables, nftables)`}},
		{"deny what is not icmp", []string{"up", "--deny", "tcp"}, []string{"-deny", `cannot deny "tcp": want icmp`}},
		{"fault deny what is not icmp", []string{"fault", "cnitrace-ab12cd", "--deny", "udp"}, []string{"-deny", "want icmp"}},
		{"wire with a deny", []string{"wire", "--lab", "cnitrace-ab12cd", "--deny", "icmp"}, []string{"only network delays and losses"}},
		{"backends without a lab", []string{"backends"}, []string{"backends: give --lab NAME"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != cli.ExitUsage {
				t.Errorf("got exit code %d, want %d (stderr %q)", code, cli.ExitUsage, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "cnitrace-lab: error: ") {
				t.Errorf("got stderr %q, want exactly one 'cnitrace-lab: error:' line", stderr)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(stderr, m) {
					t.Errorf("got stderr %q, want it to mention %q", stderr, m)
				}
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestLabHelpListsFaultFlags(t *testing.T) {
	for _, cmd := range []string{"up", "fault", "demo"} {
		code, stdout, _ := runCLI(t, cmd, "--help")
		if code != cli.ExitOK {
			t.Errorf("%s --help: exit code %d, want 0", cmd, code)
		}
		for _, want := range []string{"--delay WHERE=DURATION", "--loss WHERE=P", "--bloat N", "--deny icmp", "-delay", "-loss", "-bloat", "-deny"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s --help does not show %s:\n%s", cmd, want, stdout)
			}
		}
	}
	if _, stdout, _ := runCLI(t, "fault", "--help"); !strings.Contains(stdout, "-clear") {
		t.Errorf("fault --help does not document --clear:\n%s", stdout)
	}
}

// up documents the Service's modes and the backends.
func TestLabUpHelpListsServiceModes(t *testing.T) {
	code, stdout, _ := runCLI(t, "up", "--help")
	if code != cli.ExitOK {
		t.Fatalf("up --help: exit code %d, want 0", code)
	}
	for _, want := range []string{"[--service-mode M]", "[--backends]", "-service-mode mode", "iptables (the default) or nftables", "as kube-proxy writes them", "-backends"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("up --help does not show %s:\n%s", want, stdout)
		}
	}
}
