//go:build linux

package labtest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// recorder is a testing.TB that keeps the errors reported to it.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestPrivilegedNewBuildsALab(t *testing.T) {
	l := labtest.New(t)
	if len(l.Nodes) != 2 || l.Nodes[0].NS == nil || l.Nodes[1].Pod.NS == nil {
		t.Fatalf("New returned a lab without open namespaces: %+v", l)
	}
	if !strings.HasPrefix(l.Name, lab.NamePrefix) {
		t.Errorf("lab name %q lacks %s", l.Name, lab.NamePrefix)
	}
}

// The cleanup's checks must see what they look for: a lab namespace still
// pinned, and a thread parked in a lab namespace.
func TestPrivilegedChecksCatchLeaks(t *testing.T) {
	labtest.Require(t)
	self, err := topology.CurrentNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	l, err := lab.Up(t.Context(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	r := &recorder{TB: t}
	labtest.CheckGone(r, l.Name)
	if len(r.errs) != 7 { // per node: the node, its pod and the sibling; the lab's marker
		t.Errorf("CheckGone on a standing lab reported %d errors, want 7: %q", len(r.errs), r.errs)
	}

	release := parkThread(t, l.Nodes[0].NS, self)
	r = &recorder{TB: t}
	labtest.CheckThreads(r, self)
	release()
	if len(r.errs) != 1 {
		t.Errorf("CheckThreads with a thread parked in %s reported %q, want one error", l.Nodes[0].Name, r.errs)
	}
	labtest.CheckThreads(t, self)
}

// parkThread moves a locked OS thread into ns and keeps it there until
// release is called, which moves it back to home.
func parkThread(t *testing.T, ns, home *topology.NetNS) (release func()) {
	entered, done, back := make(chan error), make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(back)
		if err := unix.Setns(ns.Fd(), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			entered <- err
			return
		}
		entered <- nil
		<-done
		if unix.Setns(home.Fd(), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // else stay locked: the runtime discards the thread
		}
	}()
	if err := <-entered; err != nil {
		t.Fatalf("park a thread in %s: %v", ns, err)
	}
	return func() { close(done); <-back }
}
