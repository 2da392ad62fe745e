// Package labtest builds throw-away labs for tests, as net/http/httptest
// builds servers: New skips a test that cannot build a lab (not root, not
// Linux) unless CI=true, where that is a failure, and registers a cleanup
// that removes the lab and checks nothing was left behind.
package labtest

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// upTimeout bounds building one lab; it takes well under a second.
const upTimeout = 30 * time.Second

// threadGrace is how long CheckThreads waits for threads to come back.
const threadGrace = time.Second

// New builds a lab with a fresh random name for t. Its cleanup closes the
// lab, then reports an error if any namespace of the lab is still pinned
// under lab.NamedNetNSDir or any OS thread of the process is left in a
// network namespace other than the one the test started in.
func New(t testing.TB) *lab.Lab {
	t.Helper()
	return NewWith(t, lab.Config{})
}

// NewWith is New building the lab from cfg (with faults, say). With no
// cfg.Name the lab gets a fresh random one.
func NewWith(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	Require(t)
	self, err := topology.CurrentNetNS()
	if err != nil {
		t.Fatalf("open own netns: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		self.Close()
		if errors.Is(err, os.ErrPermission) && os.Getenv("CI") != "true" {
			t.Skipf("skipping: root without the capabilities to build the netns lab: %v", err)
		}
		t.Fatalf("build lab: %v", err)
	}
	t.Cleanup(func() {
		defer self.Close()
		if err := l.Close(); err != nil {
			t.Errorf("close lab %s: %v", l.Name, err)
		}
		CheckGone(t, l.Name)
		CheckThreads(t, self)
	})
	return l
}

// Require skips t when a lab cannot be built here, or fails it when CI=true:
// CI runs as root and must run the lab tests for real.
func Require(t testing.TB) {
	t.Helper()
	reason := ""
	switch {
	case runtime.GOOS != "linux":
		reason = "skipping: the netns lab needs Linux"
	case os.Geteuid() != 0:
		reason = "skipping: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to build the netns lab"
	default:
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", strings.TrimPrefix(reason, "skipping: "))
	}
	t.Skip(reason)
}

// CheckGone reports an error for every entry of lab.NamedNetNSDir that
// belongs to the lab called name, for its marker, for the pid file or log
// of its background delay line, for its lab.RunDir (the backends' pid
// files and logs) and for every process still running for it (its delay
// line, backends or DNS servers: lab.Processes).
func CheckGone(t testing.TB, name string) {
	t.Helper()
	entries, err := os.ReadDir(lab.NamedNetNSDir)
	if err != nil && !os.IsNotExist(err) {
		t.Errorf("list %s: %v", lab.NamedNetNSDir, err)
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			t.Errorf("netns %s of lab %s still pinned in %s", e.Name(), name, lab.NamedNetNSDir)
		}
	}
	for _, f := range []string{lab.WirePIDFile(name), lab.WireLogFile(name), lab.MarkerFile(name), lab.RunDir(name)} {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s of lab %s is left behind", f, name)
		}
	}
	pids, err := lab.Processes(name)
	if err != nil {
		t.Errorf("list the processes of lab %s: %v", name, err)
	}
	for _, pid := range pids {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		t.Errorf("process %d of lab %s is still running: %s", pid, name, strings.ReplaceAll(strings.TrimSpace(string(cmdline)), "\x00", " "))
	}
}

// CheckThreads reports an error if an OS thread of this process stays in
// a network namespace other than want. A thread that another goroutine has
// moved for a moment (topology.NetNS.Do in a parallel test) comes back
// within milliseconds, so the check passes as soon as one look finds none,
// and fails only if some thread is still outside after threadGrace.
func CheckThreads(t testing.TB, want *topology.NetNS) {
	t.Helper()
	deadline := time.Now().Add(threadGrace)
	for {
		stray, err := ThreadsOutsideNetNS(want)
		if err != nil {
			t.Errorf("check threads: %v", err)
			return
		}
		if len(stray) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("threads %v are still outside %s after the lab was closed", stray, want)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
