package topology_test

import (
	"testing"

	"github.com/cnitrace/cnitrace/topology/lab/labtest"
	"golang.org/x/sys/unix"
)

// TestPrivilegedDoCreatesInsideAndRestores creates a socket inside a fresh
// netns, checks that it lives there, and that no OS thread stayed behind.
func TestPrivilegedDoCreatesInsideAndRestores(t *testing.T) {
	ns := labtest.NetNS(t, "topo") // its cleanup checks the pin is gone
	here := labtest.Self(t)
	if ns.ID() == here.ID() {
		t.Fatalf("new netns %s is the current one", ns)
	}

	var inside uint64
	for range 20 { // many switches, to catch a leaked thread
		err := ns.Do(func() error {
			var st unix.Stat_t
			if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
				return err
			}
			inside = st.Ino
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if inside != ns.Inode() {
		t.Errorf("Do ran in net:[%d], want %s", inside, ns)
	}
	if stray, err := labtest.ThreadsOutsideNetNS(here); err != nil || len(stray) > 0 {
		t.Errorf("threads left in a foreign netns: %v (%v)", stray, err)
	}
}
