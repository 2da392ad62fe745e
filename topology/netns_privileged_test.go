package topology

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("privileged test cannot run: CI must run as root")
	}
	t.Skip("skipping: needs root (CAP_SYS_ADMIN) to create network namespaces")
}

// TestPrivilegedDoCreatesInsideAndRestores creates a socket inside a fresh
// netns, checks that it lives there, and that no OS thread stayed behind.
func TestPrivilegedDoCreatesInsideAndRestores(t *testing.T) {
	needRoot(t)
	var b [4]byte
	rand.Read(b[:])
	name := "cnitrace-topo-" + hex.EncodeToString(b[:])
	ns, err := NewNamedNetNS(NamedNetNSDir, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := RemoveNamedNetNS(NamedNetNSDir, name); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(NamedNetNSDir + "/" + name); !os.IsNotExist(err) {
			t.Errorf("%s still exists after removal", name)
		}
	})
	here, err := CurrentNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
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
	if stray, err := ThreadsOutsideNetNS(here); err != nil || len(stray) > 0 {
		t.Errorf("threads left in a foreign netns: %v (%v)", stray, err)
	}
}
