package main

import (
	"strings"
	"testing"
)

// Bad fault flags are usage errors (exit 2) on one line that names the
// flag and the forms it takes; none of these reach a lab, so no root.
func TestLabFaultFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantMsg []string // each must appear in the one error line
	}{
		{"unknown place", []string{"lab", "up", "--delay", "pod=2ms"}, []string{"-delay", `unknown place "pod"`, "network-request", "2ms, 500us or 0"}},
		{"delay without unit", []string{"lab", "up", "--delay", "network=2"}, []string{"-delay", `bad duration "2"`}},
		{"delay too long", []string{"lab", "up", "--delay", "network=2s"}, []string{"-delay", "at most 1s"}},
		{"delay as a forward fault", []string{"lab", "up", "--delay", "forward-request=1ms"}, []string{"-delay", `unknown place "forward-request"`}},
		{"no equals", []string{"lab", "up", "--loss", "network"}, []string{"-loss", "WHERE=P", "forward-request"}},
		{"loss above 100%", []string{"lab", "up", "--loss", "network=150%"}, []string{"-loss", `bad fraction "150%"`, "0.05 or 5%"}},
		{"loss as a delay", []string{"lab", "up", "--loss", "forward=1ms"}, []string{"-loss", "0.05 or 5%"}},
		{"too many rules", []string{"lab", "up", "--bloat", "70000"}, []string{"--bloat", "0 to 65536"}},
		{"negative rules", []string{"lab", "up", "--bloat", "-1"}, []string{"--bloat", "0 to 65536"}},
		{"demo checks faults too", []string{"lab", "demo", "--loss", "forward=-1"}, []string{"-loss", "0.05 or 5%"}},
		{"fault without faults", []string{"lab", "fault", "cnitrace-ab12cd"}, []string{"give faults to set, or --clear"}},
		{"fault and clear", []string{"lab", "fault", "cnitrace-ab12cd", "--clear", "--delay", "network=1ms"}, []string{"give faults to set, or --clear"}},
		{"fault with a bad flag", []string{"lab", "fault", "cnitrace-ab12cd", "--delay", "network=fast"}, []string{"lab fault", "-delay"}},
		{"fault with a bad name", []string{"lab", "fault", "../etc", "--clear"}, []string{`invalid lab name "../etc"`}},
		{"up with a bad name", []string{"lab", "up", "--name", "Lab_1"}, []string{`invalid lab name "Lab_1"`}},
		{"down with a bad name", []string{"lab", "down", "../etc"}, []string{`invalid lab name "../etc"`}},
		{"wire without a lab", []string{"lab", "wire", "--delay", "network=1ms"}, []string{"--lab NAME"}},
		{"wire with forward loss", []string{"lab", "wire", "--lab", "cnitrace-ab12cd", "--loss", "forward=0.1"}, []string{"only network delays and losses"}},
		{"unknown lab subcommand", []string{"lab", "break"}, []string{`unknown subcommand "break"`, "fault"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != exitUsage {
				t.Errorf("got exit code %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "cnitrace: error: ") {
				t.Errorf("got stderr %q, want exactly one 'cnitrace: error:' line", stderr)
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
		code, stdout, _ := runCLI(t, "lab", cmd, "--help")
		if code != exitOK {
			t.Errorf("lab %s --help: exit code %d, want 0", cmd, code)
		}
		for _, want := range []string{"--delay WHERE=DURATION", "--loss WHERE=P", "--bloat N", "-delay", "-loss", "-bloat"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("lab %s --help does not show %s:\n%s", cmd, want, stdout)
			}
		}
	}
	if _, stdout, _ := runCLI(t, "lab", "fault", "--help"); !strings.Contains(stdout, "-clear") {
		t.Errorf("lab fault --help does not document --clear:\n%s", stdout)
	}
}
