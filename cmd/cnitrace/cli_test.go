package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
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
	outDir := t.TempDir()
	fifo := filepath.Join(outDir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Each bad --out comes with a bad --netns: the output is checked first,
	// before anything is opened or sent.
	badOut := func(out string) []string {
		return []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--out", out}
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string // must appear in the one error line
	}{
		{"missing netns path", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--out", report}, cli.ExitUsage, missing},
		{"file that is not a netns", []string{"trace", "--netns", notNS, "--to", "10.244.2.2", "--out", report}, cli.ExitUsage, "not a network namespace"},
		{"bad IP", []string{"trace", "--netns", missing, "--to", "10.244.2.300"}, cli.ExitUsage, `--to "10.244.2.300": not an IP address`},
		{"IPv6 target passes to the netns check", []string{"trace", "--netns", missing, "--to", "fd00:10:244:2::2"}, cli.ExitUsage, missing},
		{"zoned IPv6 target", []string{"trace", "--netns", missing, "--to", "fe80::1%eth0"}, cli.ExitUsage, "zoned (link-local) target is not supported"},
		{"count 0", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--count", "0"}, cli.ExitUsage, "--count 0: must be at least 1"},
		{"no source", []string{"trace", "--to", "10.244.2.2"}, cli.ExitUsage, "--netns FILE or --pid PID"},
		{"unknown proto", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--proto", "sctp"}, cli.ExitUsage, `invalid value "sctp" for flag -proto: want icmp, tcp or udp`},
		{"tcp without a port", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--proto", "tcp"}, cli.ExitUsage, "--port 0: --proto tcp needs a port between 1 and 65535"},
		{"udp port out of range", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--proto", "udp", "--port", "70000"}, cli.ExitUsage, "--port 70000: --proto udp needs"},
		{"icmp with a port", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--port", "80"}, cli.ExitUsage, "--port 80: only --proto tcp and udp probes have a port"},
		{"dns suffix without dns", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--proto", "tcp", "--port", "53", "--dns-suffix", "k8s.local"}, cli.ExitUsage, "--dns-suffix k8s.local: only DNS probes (--proto udp --port 53) have a name"},
		{"bad dns suffix", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--proto", "udp", "--port", "53", "--dns-suffix", "a..b"}, cli.ExitUsage, `--dns-suffix "a..b": `},
		{"path: tcp without a port", []string{"path", "--netns", missing, "--to", "10.244.2.2", "--proto", "tcp"}, cli.ExitUsage, "--port 0: --proto tcp needs"},
		{"tcp ports exhausted", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--proto", "tcp", "--port", "80", "--interval", "100us", "--count", "100000"}, cli.ExitUsage, "--timeout 1s: at interval 100"},
		{"no target", []string{"trace", "--netns", missing}, cli.ExitUsage, "--to IP"},
		{"unknown flag", []string{"trace", "--colour"}, cli.ExitUsage, "flag provided but not defined: -colour"},
		{"unknown format", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--format", "xml"}, cli.ExitUsage, `unknown output format "xml"`},
		{"size too small", []string{"trace", "--netns", missing, "--to", "10.244.2.2", "--size", "8"}, cli.ExitUsage, "--size 8"},
		{"dead pid", []string{"path", "--pid", "999999999", "--to", "10.244.2.2"}, cli.ExitUsage, "--pid 999999999: process 999999999 does not exist under /proc"},
		{"dead pid in trace", []string{"trace", "--pid", "999999999", "--to", "10.244.2.2", "--out", report}, cli.ExitUsage, "process 999999999 does not exist under /proc"},
		{"dead pid under --proc", []string{"trace", "--pid", "999999999", "--proc", outDir, "--to", "10.244.2.2"}, cli.ExitUsage, "process 999999999 does not exist under " + outDir},
		{"missing --proc", []string{"trace", "--pid", "1", "--proc", missing, "--to", "10.244.2.2"}, cli.ExitUsage, "--proc " + missing + ": no such directory"},
		{"--out a directory", badOut(outDir), cli.ExitUsage, "--out " + outDir + ": is a directory"},
		{"--out in a missing directory", badOut(filepath.Join(missing, "x")), cli.ExitUsage, "--out " + filepath.Join(missing, "x") + ": its directory does not exist"},
		{"--out a FIFO nobody reads", badOut(fifo), cli.ExitUsage, "--out " + fifo + ": is a FIFO that no process reads"},
		{"--out into /proc", badOut("/proc/version"), cli.ExitUsage, "--out /proc/version: cannot be written"},
		{"multicast target", []string{"trace", "--netns", missing, "--to", "224.0.0.1"}, cli.ExitUsage, "--to 224.0.0.1: a multicast address"},
		{"IPv6 multicast target", []string{"path", "--netns", missing, "--to", "ff02::1"}, cli.ExitUsage, "--to ff02::1: a multicast address"},
		{"broadcast target", []string{"trace", "--netns", missing, "--to", "255.255.255.255"}, cli.ExitUsage, "--to 255.255.255.255: the broadcast address"},
		{"unspecified target", []string{"trace", "--netns", missing, "--to", "0.0.0.0"}, cli.ExitUsage, "--to 0.0.0.0: the unspecified address"},
		{"IPv6 unspecified target", []string{"trace", "--netns", missing, "--to", "::"}, cli.ExitUsage, "--to ::: the unspecified address"},
		{"loopback target", []string{"trace", "--netns", missing, "--to", "127.0.0.53"}, cli.ExitUsage, "--to 127.0.0.53: a loopback address"},
		{"IPv6 loopback target", []string{"path", "--netns", missing, "--to", "::1"}, cli.ExitUsage, "--to ::1: a loopback address"},
		{"path takes --format", []string{"path", "--netns", missing, "--to", "10.244.2.2", "--format", "json"}, cli.ExitUsage, missing},
		{"path: unknown format", []string{"path", "--netns", missing, "--to", "10.244.2.2", "--format", "xml"}, cli.ExitUsage, `unknown output format "xml"`},
		{"path: --json against --format text", []string{"path", "--netns", missing, "--to", "10.244.2.2", "--json", "--format", "text"}, cli.ExitUsage, "--json and --format text"},
		{"unknown command", []string{"traec"}, cli.ExitUsage, `unknown command "traec"`},
		{"the lab is its own command", []string{"lab", "up", "--layout", "routed"}, cli.ExitUsage, "run 'cnitrace-lab up --layout routed'"},
		// The default node netns is ours, and so is the source: a
		// hostNetwork trace has no pod path to set against the node's.
		{"baseline from the node netns", []string{"trace", "--netns", "/proc/self/ns/net", "--to", "10.244.2.2", "--baseline", "--out", report}, cli.ExitUsage, "--baseline: the source netns"},
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
			if got := dirNames(t, outDir); !slices.Equal(got, []string{"fifo"}) {
				t.Errorf("a failed run left %v in %s, want only the fifo", got, outDir)
			}
			if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
				t.Errorf("%s is no longer a FIFO (%v)", fifo, err)
			}
		})
	}
}

// dirNames lists the entries of dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestPathJSONDeprecated: path --json still works for one release, and
// says on stderr that --format json is the spelling.
func TestPathJSONDeprecated(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-netns")
	code, stdout, stderr := runCLI(t, "path", "--netns", missing, "--to", "10.244.2.2", "--json")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != cli.ExitUsage || len(lines) != 2 || stdout != "" {
		t.Fatalf("got exit %d, stdout %q, stderr %q; want exit 2 with a deprecation line and the netns error", code, stdout, stderr)
	}
	if !strings.Contains(lines[0], "--json is deprecated") || !strings.Contains(lines[0], "--format json") {
		t.Errorf("got %q, want a line saying --json is deprecated for --format json", lines[0])
	}
	if !strings.Contains(lines[1], missing) {
		t.Errorf("got %q, want the netns error", lines[1])
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"trace", "--help"}, {"path", "-h"}} {
		code, stdout, _ := runCLI(t, args...)
		if code != cli.ExitOK || !strings.Contains(stdout, "cnitrace") {
			t.Errorf("%v: got code %d stdout %q, want 0 and usage on stdout", args, code, stdout)
		}
	}
}

func TestTraceHelpListsPingFlags(t *testing.T) {
	_, stdout, _ := runCLI(t, "trace", "--help")
	for _, flag := range []string{"-pod", "-runtime-endpoint", "-host-root", "-netns", "-pid", "-node-netns", "-to", "-count", "-interval", "-timeout", "-size", "-format", "-out", "-baseline"} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("trace --help does not document %s", flag)
		}
	}
}

// TestHints: the hint follows the error's type, never its text. A missing
// capability names the capability, an unsupported layout says where to
// read why and what to do meanwhile, a missing forwarding route points at
// ip_forward; a message that only mentions those words gets no hint, and
// neither does an error without a known remedy.
func TestHints(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // "" means no hint
	}{
		{"missing capability", fmt.Errorf("open ICMP socket: %w", topology.NeedsCapability(syscall.EPERM, "CAP_NET_RAW")), "CAP_NET_RAW"},
		{"unsupported layout", fmt.Errorf("discover: hairpin: %w", topology.ErrUnsupportedLayout), "docs/known-issues.md"},
		{"no forwarding route", fmt.Errorf("discover: %w: net.ipv4.ip_forward = 0", topology.ErrNoForwardRoute), "does not forward"},
		{"permission without a capability", fmt.Errorf("write report: %w", os.ErrPermission), ""},
		{"text that looks like a capability", errors.New("socket: operation not permitted (needs CAP_NET_RAW)"), ""},
		{"text that looks like ip_forward", errors.New("is net.ipv4.ip_forward on?"), ""},
		{"something else", errors.New("something else"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hint(tc.err)
			if tc.want == "" && h != "" || tc.want != "" && !strings.Contains(h, tc.want) {
				t.Errorf("hint(%v) = %q, want one containing %q", tc.err, h, tc.want)
			}
		})
	}
}

// TestDocsShowHelpVerbatim: docs/cli.md shows every command's --help as
// the binary prints it, and the README the usage and trace's, indented as
// a code block.
func TestDocsShowHelpVerbatim(t *testing.T) {
	docs := map[string][]string{"../../docs/cli.md": {"trace", "path", "report", "listen", "merge"}, "../../README.md": {"", "trace"}}
	for doc, cmds := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range cmds {
			args := []string{cmd, "--help"}
			if cmd == "" {
				args = []string{"help"}
			}
			_, help, _ := runCLI(t, args...)
			var block strings.Builder
			for _, line := range strings.SplitAfter(help, "\n") {
				if strings.TrimSpace(line) != "" {
					block.WriteString("    ")
				}
				block.WriteString(line)
			}
			if !strings.Contains(string(b), block.String()) {
				t.Errorf("%s does not show 'cnitrace %s' verbatim; it prints:\n%s", doc, strings.Join(args, " "), block.String())
			}
		}
	}
}
