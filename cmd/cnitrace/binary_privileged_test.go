package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// buildBinary builds cnitrace as shipped: static, no cgo, no race detector.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cnitrace")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build cnitrace: %v\n%s", err, out)
	}
	return bin
}

// traceBinary runs the built binary's trace across l and decodes its JSON.
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

// TestPrivilegedBinaryRTTMatchesPing puts the shipped binary's RTT next to
// iputils ping's on the same path, both running at the same time so they
// see the same machine (on this shared 2-vCPU VM the same path's RTT moves
// 20-50% between runs seconds apart).
//
// Ping's RTT runs from its user-space send call to the kernel's receive
// stamp on the pod's interface. cnitrace reports the same round trip from
// two send times: rtt_us from the kernel's SCHED stamp (no send path at all)
// and rtt_ping_us from its own send call (its whole send path, which carries
// more process overhead than ping's single thread). Ping's figure must lie
// between the two, judged on the median of the per-round ratios (both ran
// in the same seconds): rtt_us at most 1.5x ping's and rtt_ping_us at
// least 0.83x. rtt_us carries what ping's packets never pay, its own
// captures' copies of each probe at the nine taps before the reply's
// stamp. On the Intel VM a round trip is ~10-15 us when the vCPUs are
// kept busy and 45-80 us when they idle, and rounds switch between the
// two; the copies are 1-4 us, so rtt_us/ping is 1.1-1.5 in a busy round
// and 0.8-1.0 in an idle one (medians over five rounds: 1.08-1.19 under
// two busy loops, 0.79-0.84 idle, 1.36 taken across rounds in the CI run
// that failed the 1.25 bound this replaced); 0.83-0.99 on the AMD VM
// before it, at 100-200 us.
func TestPrivilegedBinaryRTTMatchesPing(t *testing.T) {
	l := labtest.New(t)
	bin := buildBinary(t)
	var kernel, pingStyle, paths, pings, kRatios, uRatios []float64
	for range 5 {
		pinged := make(chan float64, 1)
		go func() { pinged <- pingMedianUS(t, l, 30) }()
		r := traceBinary(t, bin, l, "--count", "30", "--interval", "10ms")
		kernel, pingStyle, paths = append(kernel, r.RTT.P50), append(pingStyle, r.PingRTT.P50), append(paths, r.PathRTT.P50)
		p := <-pinged
		pings = append(pings, p)
		kRatios, uRatios = append(kRatios, r.RTT.P50/p), append(uRatios, r.PingRTT.P50/p)
	}
	k, u := median(kRatios), median(uRatios)
	t.Logf("RTT p50 per round: rtt_us %v, rtt_ping_us %v, iputils ping %v us", kernel, pingStyle, pings)
	t.Logf("path RTT p50 per round (pod interface to pod interface): %v us", paths)
	t.Logf("median ratios to ping over the rounds: rtt_us %.2f, rtt_ping_us %.2f", k, u)
	if k > 1.5 || u < 0.83 {
		t.Errorf("ping's RTT is not between cnitrace's rtt_us and rtt_ping_us: rtt_us/ping %.2f (want at most 1.5), rtt_ping_us/ping %.2f (want at least 0.83)", k, u)
	}
}

// TestPrivilegedBinaryInterrupt sends SIGINT mid-run: the binary must stop
// probing, drain the captures, print the partial report marked incomplete
// and exit 1.
func TestPrivilegedBinaryInterrupt(t *testing.T) {
	l := labtest.New(t)
	bin := buildBinary(t)
	args := append([]string{"trace", "--format", "json", "--count", "1000", "--interval", "10ms"}, l.TraceArgs()...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // discovery, arming, then some probes
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 10 s after SIGINT; stderr:\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != cli.ExitFailure {
		t.Errorf("got %v, want exit code %d", err, cli.ExitFailure)
	}
	var r jsonReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("no partial report on stdout: %v\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !r.Incomplete || r.Probes.Sent == 0 || r.Probes.Sent >= 1000 {
		t.Errorf("got incomplete=%v with %d probes sent, want a partial report (0 < sent < 1000)", r.Incomplete, r.Probes.Sent)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", stderr.String())
	}
}

// TestPrivilegedBinaryOut checks that --out puts the report in the file,
// nothing on stdout, and no temporary file next to it.
func TestPrivilegedBinaryOut(t *testing.T) {
	l := labtest.New(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "ticket.txt")
	args := append([]string{"trace", "--count", "5", "--interval", "10ms", "--out", out}, l.TraceArgs()...)
	stdout, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("trace --out: %v", err)
	}
	if len(stdout) != 0 {
		t.Errorf("got %q on stdout, want nothing with --out", stdout)
	}
	report, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(report), "verdict:") {
		t.Errorf("report file: %v\n%s", err, report)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("got %d files in the output directory, want only the report", len(entries))
	}
}

// TestPrivilegedBinaryKilledLeavesNoFile SIGKILLs the binary in the middle
// of a long run with --out: nothing of the report may be left in the
// output directory, neither a new file nor a temporary one, and a file it
// was to replace keeps its content.
func TestPrivilegedBinaryKilledLeavesNoFile(t *testing.T) {
	l := labtest.New(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.txt")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{filepath.Join(dir, "report.txt"), existing} {
		args := append([]string{"trace", "--count", "1000", "--interval", "10ms", "--out", out}, l.TraceArgs()...)
		cmd := exec.Command(bin, args...)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Probing has started once the binary says it is capturing.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() && !strings.Contains(sc.Text(), "capturing on") {
		}
		time.Sleep(100 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"existing.txt"}) {
		t.Errorf("after SIGKILL the output directory holds %v, want only existing.txt", got)
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "old" {
		t.Errorf("%s holds %q (%v), want its old content", existing, b, err)
	}
}

// TestPrivilegedBinaryOutStdout: --out naming the binary's stdout (here a
// link to /dev/stdout, itself a link to /proc/self/fd/1) writes the
// report to stdout, a pipe or a file opened for appending, and leaves the
// links alone.
func TestPrivilegedBinaryOutStdout(t *testing.T) {
	l := labtest.New(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "stdout")
	if err := os.Symlink("/dev/stdout", link); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"trace", "--count", "3", "--interval", "10ms", "--out", link}, l.TraceArgs()...)
	out, err := exec.Command(bin, args...).Output()
	if err != nil || !strings.Contains(string(out), "verdict:") {
		t.Errorf("stdout (a pipe) got %q, %v; want the report", out, err)
	}

	log := filepath.Join(dir, "log")
	if err := os.WriteFile(log, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(log); !strings.HasPrefix(string(b), "before\n") || !strings.Contains(string(b), "verdict:") {
		t.Errorf("stdout appending to a file got %q, want what it held and the report after it", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("%s is no longer a link", link)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"log", "stdout"}) {
		t.Errorf("the directory holds %v", got)
	}
}
