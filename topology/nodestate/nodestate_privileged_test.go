//go:build linux

package nodestate

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// A program of a fake host root runs chrooted to it, inside the
// namespace asked for, with PATH alone.
func TestPrivilegedRunChrooted(t *testing.T) {
	labtest.Require(t)
	root := t.TempDir()
	install(t, buildFakeProg(t), root, "usr/sbin", "iptables-save")
	writeFile(t, root, "fake-root", "")
	ns, err := topology.CurrentNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	r := newRunner(root, 5*time.Second)
	progs := r.locate()
	if progs[0].path != "/usr/sbin/iptables-save" {
		t.Fatalf("iptables-save found at %q under %s, want /usr/sbin/iptables-save", progs[0].path, root)
	}
	out, err := r.run(context.Background(), ns, progs[0].path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"argv: /usr/sbin/iptables-save\n", "env: " + minimalPATH + "\n", "cwd: /\n", "root: fake\n"} {
		if !strings.Contains(string(out.stdout), want) {
			t.Errorf("the program's output lacks %q:\n%s", want, out.stdout)
		}
	}
}

// Take on the lab: every file is JSON where it should be, the pod's
// address and the node's route toward the remote pods are there, and
// nothing failed but what the machine lacks.
func TestPrivilegedTakeLab(t *testing.T) {
	l := labtest.New(t)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	path, err := topology.Discover(n1.Pod.NS, n1.NS, n2.Pod.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s := Take(t.Context(), n1.NS, n1.Pod.NS, Options{HostRoot: t.TempDir(), Path: path})
	files := map[string][]byte{}
	for _, f := range s.Files {
		files[f.Name] = f.Data
		if strings.HasSuffix(f.Name, ".json") && !json.Valid(f.Data) {
			t.Errorf("%s is not JSON:\n%s", f.Name, f.Data)
		}
		if f.About == "" {
			t.Errorf("%s says nothing of itself", f.Name)
		}
	}
	for _, dir := range []string{"node", "pod"} {
		for _, name := range []string{"links.json", "addresses.json", "routes.json", "rules.json", "neighbours.json", "fdb.json", "sysctls.json"} {
			if _, ok := files[dir+"/"+name]; !ok {
				t.Errorf("no %s/%s", dir, name)
			}
		}
	}
	for _, g := range s.Gaps {
		// An empty host root has neither programs nor CNI configuration.
		if g.Err != nil || !(strings.Contains(g.Why, "not found under") || strings.HasPrefix(g.Name, "cni/")) {
			t.Errorf("unexpected gap: %s", g)
		}
	}
	var addrs Addresses
	if err := json.Unmarshal(files["pod/addresses.json"], &addrs); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(addrs.Addresses, func(a Address) bool {
		return a.Interface == "eth0" && strings.HasPrefix(a.Address, n1.Pod.Addr.String()+"/")
	}) {
		t.Errorf("pod/addresses.json lacks %s on eth0: %+v", n1.Pod.Addr, addrs.Addresses)
	}
	var fdb FDB
	if err := json.Unmarshal(files["node/fdb.json"], &fdb); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(fdb.Entries, func(e FDBEntry) bool { return e.Interface == "flannel.1" && e.Dst == n2.UplinkAddr.String() }) {
		t.Errorf("node/fdb.json lacks flannel.1's entry toward %s: %+v", n2.UplinkAddr, fdb.Entries)
	}
	t.Logf("%d files, gaps:\n%s", len(s.Files), gapLines(s.Gaps))
}

func gapLines(gaps []Gap) string {
	var b strings.Builder
	for _, g := range gaps {
		b.WriteString(g.String() + "\n")
	}
	return b.String()
}
