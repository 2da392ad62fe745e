package labtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// NetNS creates a throw-away named network namespace for t, called
// cnitrace-<what>-<random hex>, and removes it in t's cleanup, even when the
// test fails. Like New, it skips when not root unless CI=true.
func NetNS(t testing.TB, what string) *topology.NetNS {
	t.Helper()
	Require(t)
	var b [4]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	name := "cnitrace-" + what + "-" + hex.EncodeToString(b[:])
	ns, err := lab.NewNamedNetNS(lab.NamedNetNSDir, name)
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := lab.RemoveNamedNetNS(lab.NamedNetNSDir, name); err != nil {
			t.Errorf("remove netns %s: %v", name, err)
		}
		if _, err := os.Lstat(filepath.Join(lab.NamedNetNSDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("netns %s still pinned after removal (lstat: %v)", name, err)
		}
	})
	return ns
}

// Self opens the network namespace the test process runs in and closes it
// in t's cleanup: the reference for CheckThreads.
func Self(t testing.TB) *topology.NetNS {
	t.Helper()
	ns, err := topology.CurrentNetNS()
	if err != nil {
		t.Fatalf("open own netns: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}
