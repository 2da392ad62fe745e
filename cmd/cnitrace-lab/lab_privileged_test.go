package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// runBinary runs the built binary and returns its stdout; it fails t on a
// non-zero exit.
func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cnitrace %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// wirePID returns the pid of the lab's background delay line, or 0 when no
// pid file exists.
func wirePID(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(lab.WirePIDFile(name))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || perr != nil {
		t.Fatalf("read %s: %v %v", lab.WirePIDFile(name), err, perr)
	}
	return pid
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	i := strings.LastIndexByte(string(b), ')')
	return err == nil && i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// pingLost pings pod 2 from pod 1 count times every 10 ms and returns how
// many echoes went unanswered.
func pingLost(t *testing.T, l *lab.Lab, count int) int {
	t.Helper()
	out, _ := l.Command(t.Context(), l.Nodes[0].Pod.NSPath, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "1",
		l.Nodes[1].Pod.Addr.String()).CombinedOutput()
	var sent, received int
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "packets transmitted") {
			sent, _ = strconv.Atoi(strings.Fields(line)[0])
			received, _ = strconv.Atoi(strings.Fields(line)[3])
		}
	}
	if sent != count {
		t.Fatalf("ping sent %d of %d:\n%s", sent, count, out)
	}
	return sent - received
}

// The CLI builds a lab with a network delay whose delay line runs in the
// background, a trace puts the delay on the network segment, `lab fault`
// swaps and clears faults, and `lab down` leaves nothing: no process, no
// pid file, no namespace.
func TestPrivilegedLabFaultsCLI(t *testing.T) {
	labtest.Require(t)
	bin, traceBin := buildBinaries(t)
	b := make([]byte, 3)
	rand.Read(b)
	name := "cnitrace-cli-" + hex.EncodeToString(b)
	t.Cleanup(func() { lab.Down(name) }) // only if the test fails before its own Down

	out := runBinary(t, bin, "up", "--name", name, "--delay", "network=2ms")
	if !strings.Contains(out, "faults: --delay network=2ms") || !strings.Contains(out, lab.WirePIDFile(name)) {
		t.Errorf("lab up does not say which faults it set and where the delay line runs:\n%s", out)
	}
	pid := wirePID(t, name)
	if pid == 0 || !running(pid) {
		t.Fatalf("no background delay line after lab up (pid %d)", pid)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("delay line %d is in session %d (%v), want its own", pid, sid, err)
	}
	l, err := lab.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkNetworkSegment(t, traceBinary(t, traceBin, l, "--count", "40", "--interval", "10ms"), 4000)

	runBinary(t, bin, "fault", name, "--loss", "forward-request=0.5")
	if running(pid) || wirePID(t, name) != 0 {
		t.Errorf("the delay line (pid %d) outlived a fault set without network faults", pid)
	}
	if _, err := os.Lstat(filepath.Join(lab.NamedNetNSDir, name+"-wire")); err == nil {
		t.Errorf("the wire namespace outlived a fault set without network faults")
	}
	if lost := pingLost(t, l, 100); lost < 25 || lost > 75 {
		t.Errorf("forward-request=0.5 lost %d of 100 echoes, want 50 +- 25", lost)
	}
	runBinary(t, bin, "fault", name, "--clear")
	if lost := pingLost(t, l, 50); lost != 0 {
		t.Errorf("%d of 50 echoes lost after lab fault --clear", lost)
	}

	runBinary(t, bin, "fault", name, "--delay", "network=0")
	if pid = wirePID(t, name); pid == 0 || !running(pid) {
		t.Fatalf("no background delay line after lab fault --delay network=0 (pid %d)", pid)
	}
	runBinary(t, bin, "down", name)
	if running(pid) {
		t.Errorf("delay line %d still running after lab down", pid)
	}
	labtest.CheckGone(t, name)
}

// checkNetworkSegment checks the request network segment (uplink out and
// back in) holds the wire's delay: p50 within 500 us of wantUS.
func checkNetworkSegment(t *testing.T, r jsonReport, wantUS float64) {
	t.Helper()
	for _, s := range r.Segments {
		if s.Class != "network" || s.US == nil {
			continue
		}
		t.Logf("%s %s segment %s -> %s: p50 %.1f us, max %.1f us", s.Direction, s.Class, s.From, s.To, s.US.P50, s.US.Max)
		if math.Abs(s.US.P50-wantUS) > 500 {
			t.Errorf("network segment p50 %.1f us, want %.0f +- 500 us", s.US.P50, wantUS)
		}
		return
	}
	t.Errorf("no measured network segment in the report: %+v", r.Segments)
}
