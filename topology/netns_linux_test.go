package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenNetNSRejectsWhatIsNotANetNS(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(t.TempDir(), "missing"), os.ErrNotExist},
		{"plain file", plain, ErrNotNetNS},
		{"mount namespace", "/proc/self/ns/mnt", ErrNotNetNS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := OpenNetNS(tc.path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.want)
			}
			if ns != nil {
				t.Errorf("got a handle %v with the error", ns)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

func TestCurrentNetNSID(t *testing.T) {
	ns, err := CurrentNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	link, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if ns.ID() != link {
		t.Errorf("got ID %q, want the readlink form %q", ns.ID(), link)
	}
	if err := ns.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := ns.Close(); err != nil {
		t.Errorf("second close: got %v, want nil", err)
	}
}

func TestNetNSOfPIDRejectsNonPositive(t *testing.T) {
	if _, err := NetNSOfPID("/proc", 0); err == nil {
		t.Error("pid 0 accepted")
	}
}
