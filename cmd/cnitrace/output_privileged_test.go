package main

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// echoRequestsSent returns how many ICMP and ICMPv6 echo requests ns has
// sent (Icmp OutEchos and Icmp6OutEchos): every probe, the warm-up one
// included, and nothing else, unlike the interface's counters, which also
// count neighbour discovery.
func echoRequestsSent(t *testing.T, ns *topology.NetNS) int {
	t.Helper()
	total := 0
	for _, file := range []string{"snmp", "snmp6"} {
		// /proc/thread-self/net is the netns of the thread that opens it.
		f, err := topology.Open(ns, func() (*os.File, error) { return os.Open("/proc/thread-self/net/" + file) })
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += snmpCounter(t, string(b), file)
	}
	return total
}

// snmpCounter finds the echo request counter in /proc/net/snmp (a header
// line and a value line per protocol) or /proc/net/snmp6 (name value).
func snmpCounter(t *testing.T, text, file string) int {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if file == "snmp6" && len(f) == 2 && f[0] == "Icmp6OutEchos" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
		if file == "snmp" && len(f) > 0 && f[0] == "Icmp:" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "Icmp:") {
			if j := slices.Index(f, "OutEchos"); j > 0 {
				n, _ := strconv.Atoi(strings.Fields(lines[i+1])[j])
				return n
			}
		}
	}
	t.Fatalf("no echo request counter in %s", file)
	return 0
}

// TestPrivilegedBadOutputSendsNothing: an --out that cannot be written is
// a usage error found before anything is sent, even with a lab to trace
// across: no echo request leaves the pod, not even the warm-up probe.
func TestPrivilegedBadOutputSendsNothing(t *testing.T) {
	l := labtest.New(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{dir, filepath.Join(dir, "missing", "report.txt"), fifo, "/proc/version"} {
		t.Run(out, func(t *testing.T) {
			before := echoRequestsSent(t, l.Nodes[0].Pod.NS)
			args := append([]string{"trace", "--count", "3", "--interval", "10ms", "--out", out}, l.TraceArgs()...)
			code, stdout, stderr := runCLI(t, args...)
			if code != cli.ExitUsage || !strings.HasPrefix(stderr, "cnitrace: error: --out "+out+": ") || strings.Count(stderr, "\n") != 1 || stdout != "" {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit 2 and one line naming --out %s", code, stdout, stderr, out)
			}
			if sent := echoRequestsSent(t, l.Nodes[0].Pod.NS) - before; sent != 0 {
				t.Errorf("%d echo requests left the pod before the bad --out was reported, want none", sent)
			}
		})
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"fifo"}) {
		t.Errorf("the output directory holds %v, want only the fifo", got)
	}
	// The counter does count probes: a good run moves it.
	before := echoRequestsSent(t, l.Nodes[0].Pod.NS)
	if code, _, stderr := traceOut(t, l, filepath.Join(dir, "report.txt")); code != cli.ExitOK {
		t.Fatalf("trace: exit %d; stderr:\n%s", code, stderr)
	}
	if sent := echoRequestsSent(t, l.Nodes[0].Pod.NS) - before; sent < 3 {
		t.Errorf("a run of 3 probes moved the echo request counter by %d", sent)
	}
}

// traceOut runs a short trace across l with --out out and returns its
// exit code and stderr; stdout must be empty unless out is "-".
func traceOut(t *testing.T, l *lab.Lab, out string) (code int, stdout, stderr string) {
	t.Helper()
	args := append([]string{"trace", "--count", "3", "--interval", "10ms", "--out", out}, l.TraceArgs()...)
	return runCLI(t, args...)
}

// TestPrivilegedOutputTargets writes real reports to every kind of --out:
// an existing file is replaced keeping its mode and nothing else is left
// in its directory; a link to a file stays a link; a FIFO and a character
// device are written in place and stay what they are (a full device fails
// the run instead of being turned into a file); - is stdout.
func TestPrivilegedOutputTargets(t *testing.T) {
	l := labtest.New(t)

	t.Run("existing file keeps its mode", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "report.txt")
		if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "link")
		if err := os.Symlink("report.txt", link); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{out, link} {
			if code, stdout, stderr := traceOut(t, l, path); code != cli.ExitOK || stdout != "" {
				t.Fatalf("--out %s: exit %d, stdout %q, stderr:\n%s", path, code, stdout, stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil || !strings.Contains(string(b), "verdict:") {
				t.Errorf("%s does not hold the report: %v\n%s", out, err, b)
			}
			if fi, err := os.Stat(out); err != nil || fi.Mode() != 0o644 {
				t.Errorf("%s: mode %v (%v), want -rw-r--r-- as before", out, fi.Mode(), err)
			}
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("%s is no longer a link", link)
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"link", "report.txt"}) {
				t.Errorf("the directory holds %v, want only link and report.txt", got)
			}
		}
	})

	t.Run("character devices", func(t *testing.T) {
		dir := t.TempDir()
		null, full := filepath.Join(dir, "null"), filepath.Join(dir, "full")
		// Devices of our own, so that no run can touch the system's /dev.
		for path, dev := range map[string]uint64{null: unix.Mkdev(1, 3), full: unix.Mkdev(1, 7)} {
			if err := unix.Mknod(path, unix.S_IFCHR|0o666, int(dev)); err != nil {
				t.Skipf("skipping: mknod: %v", err)
			}
		}
		if code, _, stderr := traceOut(t, l, null); code != cli.ExitOK {
			t.Errorf("--out a null device: exit %d, want 0; stderr:\n%s", code, stderr)
		}
		code, _, stderr := traceOut(t, l, full)
		if code != cli.ExitFailure || !strings.Contains(stderr, "no space left on device") {
			t.Errorf("--out a full device: exit %d, want 1 saying no space is left; stderr:\n%s", code, stderr)
		}
		for _, path := range []string{null, full} {
			if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
				t.Errorf("%s is no longer a character device: %v", path, fi.Mode())
			}
		}
		if got := dirNames(t, dir); !slices.Equal(got, []string{"full", "null"}) {
			t.Errorf("the directory holds %v, want only the devices", got)
		}
	})

	t.Run("FIFO", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if code, _, stderr := traceOut(t, l, fifo); code != cli.ExitOK {
			t.Fatalf("--out a FIFO: exit %d; stderr:\n%s", code, stderr)
		}
		// The report (a few KB) waits in the pipe's buffer; the writer is
		// gone, so reading ends there.
		if got, err := io.ReadAll(r); err != nil || !strings.Contains(string(got), "verdict:") {
			t.Errorf("the FIFO's reader got %q, %v; want the report", got, err)
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
			t.Errorf("%s is no longer a FIFO", fifo)
		}
	})

	t.Run("- is stdout", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		code, stdout, stderr := traceOut(t, l, "-")
		if code != cli.ExitOK || !strings.Contains(stdout, "verdict:") {
			t.Errorf("--out -: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
		}
		if got := dirNames(t, dir); len(got) != 0 {
			t.Errorf("--out - created %v", got)
		}
	})
}
