package nodestate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A fake host root whose /etc/cni/net.d is a link (absolute, as on some
// distributions) to another directory of the root: only the CNI
// configuration files in it are copied; the kubeconfig beside them, a
// directory, a link out of the root, a FIFO and a file too large are
// named in gaps and never read.
func TestTakeCNI(t *testing.T) {
	root := t.TempDir()
	conf := "/var/lib/cni/conf"
	writeFile(t, root, conf+"/10-flannel.conflist", `{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"}]}`)
	writeFile(t, root, conf+"/99-loopback.conf", `{"cniVersion":"1.0.0","name":"lo","type":"loopback"}`)
	writeFile(t, root, conf+"/calico-kubeconfig", "token: SECRET-TOKEN\n")
	writeFile(t, root, conf+"/multus.d/multus.kubeconfig", "token: SECRET-TOKEN\n")
	writeFile(t, root, conf+"/big.json", strings.Repeat(" ", MaxCNIFile+1))
	if err := os.MkdirAll(filepath.Join(root, "etc/cni"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"etc/cni/net.d": conf, "var/lib/cni/conf/50-passwd.conf": "/etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(root, conf, "fifo.conf"), 0o644); err != nil {
		t.Fatal(err)
	}

	s := &Snapshot{}
	done := make(chan struct{})
	go func() { s.takeCNI(root); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("takeCNI blocked (on the FIFO?)")
	}

	var names []string
	for _, f := range s.Files {
		names = append(names, f.Name)
		if strings.Contains(string(f.Data), "SECRET") || strings.Contains(string(f.Data), "root:") {
			t.Errorf("%s holds what it must not: %q", f.Name, f.Data)
		}
	}
	if want := []string{"cni/net.d/10-flannel.conflist", "cni/net.d/99-loopback.conf"}; !slices.Equal(names, want) {
		t.Errorf("got files %q, want %q", names, want)
	}
	gaps := map[string]string{}
	for _, g := range s.Gaps {
		gaps[g.Name] = g.String()
	}
	for name, why := range map[string]string{
		"cni/net.d/calico-kubeconfig": "not a CNI configuration file",
		"cni/net.d/multus.d":          "not a CNI configuration file",
		"cni/net.d/50-passwd.conf":    "symbolic link",
		"cni/net.d/fifo.conf":         "not a regular file",
		"cni/net.d/big.json":          "larger than the limit",
	} {
		if !strings.Contains(gaps[name], why) {
			t.Errorf("gap for %s = %q, want it to say %q", name, gaps[name], why)
		}
	}
	if len(s.Gaps) != 5 {
		t.Errorf("got %d gaps, want 5: %q", len(s.Gaps), s.Gaps)
	}
}

func TestTakeCNIMissing(t *testing.T) {
	s := &Snapshot{}
	s.takeCNI(t.TempDir())
	if len(s.Files) != 0 || len(s.Gaps) != 1 || s.Gaps[0].Err != nil || !strings.Contains(s.Gaps[0].Why, "does not exist") {
		t.Errorf("got files %v and gaps %q, want one gap saying /etc/cni/net.d does not exist", s.Files, s.Gaps)
	}
}

// Links are followed inside the root, never out of it: an absolute one
// starts again at the root, .. stops there.
func TestInRoot(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "usr/sbin/xtables-nft-multi", "")
	if err := os.MkdirAll(filepath.Join(root, "etc/alternatives"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ link, target string }{
		{"usr/sbin/iptables-save", "/etc/alternatives/iptables-save"},
		{"etc/alternatives/iptables-save", "../../../../../usr/sbin/xtables-nft-multi"},
		{"sbin", "usr/sbin"},
	} {
		if err := os.Symlink(l.target, filepath.Join(root, l.link)); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]string{
		"/usr/sbin/iptables-save": "/usr/sbin/xtables-nft-multi",
		"/sbin/iptables-save":     "/usr/sbin/xtables-nft-multi",
		"/../../etc/alternatives": "/etc/alternatives",
	} {
		got, err := inRoot(root, p)
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("inRoot(%s) = %q, %v; want %q", p, got, err, filepath.Join(root, want))
		}
	}
	if _, err := inRoot(root, "/usr/sbin/nft"); !os.IsNotExist(err) {
		t.Errorf("inRoot of a missing file: %v, want not exist", err)
	}
	if got, err := inRoot("/", "/usr/../etc/x"); err != nil || got != "/etc/x" {
		t.Errorf("inRoot(/, ...) = %q, %v; want /etc/x", got, err)
	}
}

func TestFindProgram(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "usr/sbin/xtables-nft-multi", "")
	if err := os.Chmod(filepath.Join(root, "usr/sbin/xtables-nft-multi"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "usr/bin/nft", "") // not executable
	if err := os.Symlink("/usr/sbin/xtables-nft-multi", filepath.Join(root, "usr/sbin/iptables-save")); err != nil {
		t.Fatal(err)
	}
	if p, ok := findProgram(root, programDirs, "iptables-save"); !ok || p != "/usr/sbin/iptables-save" {
		t.Errorf("findProgram(iptables-save) = %q, %v; want /usr/sbin/iptables-save (the node's path, the link kept)", p, ok)
	}
	for _, name := range []string{"nft", "ip6tables-save"} {
		if p, ok := findProgram(root, programDirs, name); ok {
			t.Errorf("findProgram(%s) = %q, want not found", name, p)
		}
	}
}
