//go:build linux

package lab_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

func TestPrivilegedPodToPod(t *testing.T) {
	l := labtest.New(t)
	p1, p2 := l.Nodes[0].Pod, l.Nodes[1].Pod
	ping(t, l, p1.NSPath, p2.Addr)
	ping(t, l, p2.NSPath, p1.Addr)
	ping(t, l, p1.NSPath, l.Nodes[0].Sibling.Addr) // same node: bridged by cni0
	ping(t, l, l.Nodes[1].Sibling.NSPath, p1.Addr) // a sibling reaches the other node too
}

func TestPrivilegedOverlay(t *testing.T) {
	l := labtest.New(t)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	h1 := handle(t, n1.NS)
	vx := checkVXLAN(t, h1, n1)
	checkRemote(t, h1, vx.Attrs().Index, n2)
	checkRemote(t, handle(t, n2.NS), checkVXLAN(t, handle(t, n2.NS), n2).Attrs().Index, n1)

	tx := linkStats(t, h1, lab.VXLANName).TxPackets
	rx := linkStats(t, handle(t, n2.NS), lab.VXLANName).RxPackets
	ping(t, l, n1.NSPath, n2.Pod.Addr) // node 1 -> pod 2: routed into flannel.1
	if got := linkStats(t, h1, lab.VXLANName).TxPackets - tx; got < 3 {
		t.Errorf("%s in %s sent %d packets during 3 pings, want >= 3", lab.VXLANName, n1.Name, got)
	}
	if got := linkStats(t, handle(t, n2.NS), lab.VXLANName).RxPackets - rx; got < 3 {
		t.Errorf("%s in %s received %d packets during 3 pings, want >= 3", lab.VXLANName, n2.Name, got)
	}
}

func TestPrivilegedBloatForward(t *testing.T) {
	l := labtest.New(t)
	ctx := t.Context()
	base := forwardRules(t, l, 1)
	start := time.Now()
	if err := l.BloatForward(ctx, 1, 20000); err != nil {
		t.Fatal(err)
	}
	t.Logf("BloatForward 20000 rules took %v", time.Since(start))
	if got, want := forwardRules(t, l, 1), base+20000; got != want {
		t.Errorf("node 1 has %d FORWARD lines after BloatForward, want %d", got, want)
	}
	if got := forwardRules(t, l, 2); got != base {
		t.Errorf("node 2 has %d FORWARD lines, want %d: BloatForward touched the other node", got, base)
	}
	ping(t, l, l.Nodes[0].Pod.NSPath, l.Nodes[1].Pod.Addr) // the rules match no lab packet
	if err := l.ClearForward(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := forwardRules(t, l, 1); got != base {
		t.Errorf("node 1 has %d FORWARD lines after ClearForward, want %d", got, base)
	}
}

// forwardRules counts the lines of `iptables -S FORWARD` in node i.
func forwardRules(t *testing.T, l *lab.Lab, i int) int {
	t.Helper()
	out, err := l.Command(t.Context(), l.Nodes[i-1].NSPath, "sh", "-c", "iptables -S FORWARD | wc -l").CombinedOutput()
	if err != nil {
		t.Fatalf("count FORWARD rules in node %d: %v: %s", i, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("count FORWARD rules in node %d: %v", i, err)
	}
	return n
}

func TestPrivilegedCloseRemovesEverything(t *testing.T) {
	labtest.Require(t)
	self := labtest.Self(t)
	rootLinks, rootForward := rootState(t)
	start := time.Now()
	l, err := lab.Up(t.Context(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Up took %v", time.Since(start))
	defer l.Close()
	if out, err := l.Command(t.Context(), l.Nodes[0].NSPath, "cat", "/proc/sys/net/ipv4/ip_forward").Output(); err != nil || string(out) != "1\n" {
		t.Errorf("ip_forward in %s = %q, %v; want 1", l.Nodes[0].Name, out, err)
	}
	if names, err := lab.List(); err != nil || !slices.Contains(names, l.Name) {
		t.Errorf("List() = %v, %v; want it to contain %s", names, err, l.Name)
	}
	ino := l.Nodes[0].NS.Inode()
	start = time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start))
	labtest.CheckGone(t, l.Name)
	labtest.CheckThreads(t, self)
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if names, err := lab.List(); err != nil || slices.Contains(names, l.Name) {
		t.Errorf("List() after Close = %v, %v; want no %s", names, err, l.Name)
	}
	if fd := openFDTo(t, topology.NetNSID(ino)); fd != "" {
		t.Errorf("fd %s still refers to %s after Close", fd, topology.NetNSID(ino))
	}
	if links, forward := rootState(t); !slices.Equal(links, rootLinks) || forward != rootForward {
		t.Errorf("own netns changed: links %v -> %v, ip_forward %q -> %q", rootLinks, links, rootForward, forward)
	}
}

func TestPrivilegedUpFailureLeavesNothing(t *testing.T) {
	labtest.Require(t)
	self := labtest.Self(t)
	name := uniqueName(t, "cnitrace-fail-")
	t.Cleanup(func() { lab.Down(name) }) // only if the checks below fail
	squatter, err := lab.NewNamedNetNS(lab.NamedNetNSDir, name+"-n2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		squatter.Close()
		lab.RemoveNamedNetNS(lab.NamedNetNSDir, name+"-n2")
	})
	l, err := lab.Up(t.Context(), lab.Config{Name: name})
	if err == nil {
		l.Close()
		t.Fatalf("Up(%s) with %s-n2 taken succeeded", name, name)
	}
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("Up(%s) = %v, want an error wrapping fs.ErrExist", name, err)
	}
	t.Logf("Up with a taken namespace: %v", err)
	for _, ns := range []string{name + "-n1", name + "-n1-pod", name + "-n2-pod"} {
		if _, err := os.Lstat(filepath.Join(lab.NamedNetNSDir, ns)); err == nil {
			t.Errorf("%s left behind by the failed Up", ns)
		}
	}
	if _, err := os.Lstat(filepath.Join(lab.NamedNetNSDir, name+"-n2")); err != nil {
		t.Errorf("the failed Up removed %s-n2, which it had not created: %v", name, err)
	}
	labtest.CheckThreads(t, self)
}

func TestPrivilegedUpFailureAtEveryStep(t *testing.T) {
	labtest.Require(t)
	self := labtest.Self(t)
	var steps []string
	l, err := lab.UpFailingAt(t.Context(), lab.Config{}, func(s string) error { steps = append(steps, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	injected := errors.New("injected failure")
	for _, step := range append(steps, "cancelled context") {
		t.Run(step, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			name := uniqueName(t, "cnitrace-step-")
			t.Cleanup(func() { lab.Down(name) }) // only if the checks below fail
			l, err := lab.UpFailingAt(ctx, lab.Config{Name: name}, func(s string) error {
				if step == "cancelled context" {
					cancel()
				} else if s == step {
					return injected
				}
				return nil
			})
			cancel()
			if err == nil {
				l.Close()
				t.Fatal("Up succeeded")
			}
			labtest.CheckGone(t, name)
			labtest.CheckThreads(t, self)
		})
	}
}

// TestPrivilegedDown builds a lab in a child process that exits without
// closing it, as `cnitrace-lab up` does, and removes it by name.
func TestPrivilegedDown(t *testing.T) {
	labtest.Require(t)
	name := uniqueName(t, "cnitrace-down-")
	t.Cleanup(func() { lab.Down(name) })
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperUpAndExit$", "-test.v")
	cmd.Env = append(os.Environ(), "CNITRACE_LAB_HELPER_NAME="+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child Up: %v\n%s", err, out)
	}
	if names, err := lab.List(); err != nil || !slices.Contains(names, name) {
		t.Fatalf("List() = %v, %v; want it to contain %s", names, err, name)
	}
	pod1 := filepath.Join(lab.NamedNetNSDir, name+"-n1-pod")
	if out, err := exec.CommandContext(t.Context(), "nsenter", "--net="+pod1, "--", "ping", "-c", "1", "-W", "1", "10.244.2.2").CombinedOutput(); err != nil {
		t.Errorf("ping pod 2 from %s after its builder exited: %v\n%s", pod1, err, out)
	}
	if err := lab.Down(name); err != nil {
		t.Fatalf("Down(%s): %v", name, err)
	}
	labtest.CheckGone(t, name)
	if err := lab.Down(name); !errors.Is(err, lab.ErrNoLab) {
		t.Errorf("second Down(%s) = %v, want ErrNoLab", name, err)
	}
}

// TestHelperUpAndExit is TestPrivilegedDown's child: it builds a lab and
// drops it, so the process exits with the lab standing. With
// CNITRACE_LAB_HELPER_DELAY, the lab has a wire with that delay, whose
// delay line runs in a background process (helperWireCommand); with
// CNITRACE_LAB_HELPER_SERVICE, a Service in that mode, whose backends'
// TCP servers run in one too (helperBackendCommand).
func TestHelperUpAndExit(t *testing.T) {
	name := os.Getenv("CNITRACE_LAB_HELPER_NAME")
	if name == "" {
		t.Skip("skipping: helper process of TestPrivilegedDown")
	}
	cfg := lab.Config{Name: name}
	if d := os.Getenv("CNITRACE_LAB_HELPER_DELAY"); d != "" {
		if err := cfg.Faults.SetDelay("network=" + d); err != nil {
			t.Fatal(err)
		}
		cfg.WireCommand = helperWireCommand
	}
	if m := os.Getenv("CNITRACE_LAB_HELPER_SERVICE"); m != "" {
		cfg.Service, cfg.ServiceMode, cfg.BackendCommand = true, lab.ServiceMode(m), helperBackendCommand
	}
	if _, err := lab.Up(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}

// TestPrivilegedListFindsOrphanWire: a delay line's pid file without any
// namespace (a failed rerun of lab up) still lists its lab, so `lab down`
// with no name can find it, and Down removes the file.
func TestPrivilegedListFindsOrphanWire(t *testing.T) {
	labtest.Require(t)
	name := lab.NamePrefix + "orphan" + strconv.Itoa(os.Getpid())
	if err := os.MkdirAll(lab.StateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pidFile := lab.WirePIDFile(name)
	if err := os.WriteFile(pidFile, []byte("999999999\n"), 0o644); err != nil { // no such process
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(pidFile) })
	if names, err := lab.List(); err != nil || !slices.Contains(names, name) {
		t.Fatalf("List() = %v, %v; want it to contain %s", names, err, name)
	}
	if err := lab.Down(name); err != nil {
		t.Fatalf("Down(%s): %v", name, err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("%s still there after Down", pidFile)
	}
	if names, _ := lab.List(); slices.Contains(names, name) {
		t.Errorf("List() still has %s after Down", name)
	}
	if entries, err := os.ReadDir(lab.StateDir); err == nil && len(entries) == 0 {
		t.Errorf("Down left the empty %s behind", lab.StateDir)
	}
}

// TestPrivilegedListShowsOnlyMarkedLabs: a lab named anything is listed
// (its marker says this tool built it), and namespaces that only look like
// a lab's (someone else's, with no marker) are neither listed nor removed
// by a Down of another lab.
func TestPrivilegedListShowsOnlyMarkedLabs(t *testing.T) {
	labtest.Require(t)
	named := uniqueName(t, "mylab-")
	l := labtest.NewWith(t, lab.Config{Name: named})
	if _, err := os.Stat(lab.MarkerFile(l.Name)); err != nil {
		t.Errorf("no marker for lab %s: %v", l.Name, err)
	}
	lookalike := uniqueName(t, "cnitrace-other-")
	ns, err := lab.NewNamedNetNS(lab.NamedNetNSDir, lookalike+"-n1")
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	t.Cleanup(func() { lab.RemoveNamedNetNS(lab.NamedNetNSDir, lookalike+"-n1") })
	names, err := lab.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, named) {
		t.Errorf("List() = %v; want it to contain %s, built with a name of its own", names, named)
	}
	if slices.Contains(names, lookalike) {
		t.Errorf("List() = %v; want no %s: its namespace has no marker", names, lookalike)
	}
	if _, err := lab.Up(t.Context(), lab.Config{Name: named}); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("a second Up of %s: %v, want it refused as already up", named, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(lab.NamedNetNSDir, lookalike+"-n1")); err != nil {
		t.Errorf("closing lab %s touched %s-n1: %v", named, lookalike, err)
	}
}
