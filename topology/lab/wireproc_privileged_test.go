//go:build linux

package lab_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// helperWireCommand runs this test binary as the lab's background delay
// line (TestHelperServeWire), as `cnitrace lab wire` runs in the CLI.
func helperWireCommand(name string, n lab.Network) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServeWire$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "CNITRACE_LAB_HELPER_WIRE="+name,
		"CNITRACE_LAB_HELPER_WIRE_DELAY="+n.Request.Delay.String())
	return cmd
}

// TestHelperServeWire is the background delay line of
// TestPrivilegedDownStopsWireProcess: it runs until SIGTERM.
func TestHelperServeWire(t *testing.T) {
	name := os.Getenv("CNITRACE_LAB_HELPER_WIRE")
	if name == "" {
		t.Skip("skipping: helper process of TestPrivilegedDownStopsWireProcess")
	}
	d, err := time.ParseDuration(os.Getenv("CNITRACE_LAB_HELPER_WIRE_DELAY"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	stats, err := lab.ServeWire(ctx, name, network(d, 0))
	t.Logf("delay line stopped: %v", stats)
	if err != nil {
		t.Fatal(err)
	}
}

// A lab built by a process that exits, with its delay line in a background
// process: the lab works with the delay, and Down stops the process,
// removes its pid file and log, and the namespaces.
func TestPrivilegedDownStopsWireProcess(t *testing.T) {
	labtest.Require(t)
	name := uniqueName(t, "cnitrace-wire-")
	t.Cleanup(func() { lab.Down(name) }) // only if the checks below fail
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperUpAndExit$", "-test.v")
	cmd.Env = append(os.Environ(), "CNITRACE_LAB_HELPER_NAME="+name, "CNITRACE_LAB_HELPER_DELAY=1ms")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child Up: %v\n%s", err, out)
	}
	b, err := os.ReadFile(lab.WirePIDFile(name))
	if err != nil {
		t.Fatalf("no pid file of the delay line: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || syscall.Kill(pid, 0) != nil {
		t.Fatalf("pid file says %q: no such process", b)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("delay line %d is in session %d (%v), want its own", pid, sid, err)
	}
	l, err := lab.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	pingRun(t, l, 3)
	if rtts, lost := pingRun(t, l, 20); median(rtts) < 2 || lost > 0 {
		t.Errorf("RTT median %.3f ms, %d lost, through a 1 ms background wire; want > 2 ms and none", median(rtts), lost)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("closing a lab from Open stopped the background delay line")
	}
	if err := lab.Down(name); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) && !zombie(pid) {
		t.Errorf("delay line %d still running after Down (kill 0: %v)", pid, err)
	}
	labtest.CheckGone(t, name)
}

// zombie reports whether pid has exited but not been reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	i := strings.LastIndexByte(string(b), ')')
	return err == nil && i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// A background delay line that dies before it is ready fails Up with its
// log, and leaves nothing behind: no namespace, pid file or log.
func TestPrivilegedUpWithFailingWireCommand(t *testing.T) {
	labtest.Require(t)
	name := uniqueName(t, "cnitrace-wfail-")
	t.Cleanup(func() { lab.Down(name) }) // only if the checks below fail
	l, err := lab.Up(t.Context(), lab.Config{
		Name:   name,
		Faults: lab.Faults{Wire: true},
		WireCommand: func(string, lab.Network) *exec.Cmd {
			return exec.Command("sh", "-c", "echo no delay line today >&2; exit 1")
		},
	})
	if err == nil {
		l.Close()
		t.Fatal("Up succeeded with a delay line that exits at once")
	}
	if !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "no delay line today") {
		t.Errorf("Up = %v, want it to say the delay line exited, with its log", err)
	}
	labtest.CheckGone(t, name)
}
