//go:build linux

package lab_test

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedBackends: with Config.Backends every pod answers on
// BackendPort with its own address, and its DNS server answers
// WhoamiName with it, authoritatively, over IPv4 and IPv6, from the other
// node and from the same node; each dnsmasq runs in its pod, nowhere else.
func TestPrivilegedBackends(t *testing.T) {
	for _, lay := range lab.Layouts {
		t.Run(string(lay), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: lay, Backends: true})
			checkProcessesInPods(t, l, 4)
			from := l.Nodes[0].Pod.NS
			for _, p := range []*lab.Pod{l.Nodes[1].Pod, l.Nodes[1].Sibling, l.Nodes[0].Sibling} {
				for _, a := range []netip.Addr{p.Addr, p.Addr6} {
					if who, err := whoamiTCP(from, netip.AddrPortFrom(a, lab.BackendPort)); err != nil || who != a.String() {
						t.Errorf("TCP to %s in %s: %q, %v; want %s", a, p.Name, who, err, a)
					}
					who, h, err := whoamiDNS(from, netip.AddrPortFrom(a, lab.DNSPort))
					if err != nil || who != a || !h.Authoritative {
						t.Errorf("DNS %s to %s in %s: %s (authoritative %v), %v; want %s, authoritative", lab.WhoamiName, a, p.Name, who, h.Authoritative, err, a)
					}
				}
			}
			// The DNS servers answer nothing but their zone, and forward nothing.
			out, err := l.Command(t.Context(), l.Nodes[0].Pod.NSPath, "dig", "+tries=1", "+time=2", "@"+l.Nodes[1].Pod.Addr.String(), "cnt1.probe."+lab.DNSZone, "example.com").CombinedOutput()
			if errors.Is(err, exec.ErrNotFound) || strings.Contains(string(out), "executable file not found") {
				t.Logf("no dig (Debian package bind9-dnsutils): not checking NXDOMAIN and REFUSED")
				return
			}
			if s := string(out); !strings.Contains(s, "status: NXDOMAIN") || !strings.Contains(s, "flags: qr aa") || !strings.Contains(s, "status: REFUSED") {
				t.Errorf("dig: want an authoritative NXDOMAIN for a name in %s, REFUSED for one outside:\n%s", lab.DNSZone, out)
			}
		})
	}
}

// TestPrivilegedDenyICMP: --deny icmp drops node 1's pod's pings across
// the nodes, IPv4 and IPv6, counting them on its rule, while TCP to the
// same pod works; clearing the faults lets pings through again.
func TestPrivilegedDenyICMP(t *testing.T) {
	for _, lay := range lab.Layouts {
		t.Run(string(lay), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: lay, Backends: true, Faults: lab.Faults{DenyICMP: true}})
			pod1, pod2 := l.Nodes[0].Pod, l.Nodes[1].Pod
			for _, a := range []netip.Addr{pod2.Addr, pod2.Addr6} {
				if out, err := l.Command(t.Context(), pod1.NSPath, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", a.String()).CombinedOutput(); err == nil {
					t.Errorf("ping %s with --deny icmp succeeded:\n%s", a, out)
				}
				if who, err := whoamiTCP(pod1.NS, netip.AddrPortFrom(a, lab.BackendPort)); err != nil || who != a.String() {
					t.Errorf("TCP to %s with --deny icmp: %q, %v; want %s", a, who, err, a)
				}
			}
			out, err := l.Command(t.Context(), l.Nodes[0].NSPath, "iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n").CombinedOutput()
			if err != nil {
				t.Fatalf("iptables -L: %v\n%s", err, out)
			}
			if n := commentCounter(t, string(out), lab.DenyRuleComment); n != 3 {
				t.Errorf("the deny rule dropped %d packets, want the 3 echo requests:\n%s", n, out)
			}
			if err := l.SetFaults(t.Context(), lab.Faults{}); err != nil {
				t.Fatal(err)
			}
			for _, a := range []netip.Addr{pod2.Addr, pod2.Addr6} {
				ping(t, l, pod1.NSPath, a)
			}
		})
	}
}

// commentCounter returns the packet count of the iptables -L -v -x line
// whose comment is comment.
func commentCounter(t *testing.T, listing, comment string) int {
	t.Helper()
	for _, line := range strings.Split(listing, "\n") {
		if strings.Contains(line, "/* "+comment+" */") {
			return atoi(t, strings.Fields(line)[0])
		}
	}
	t.Fatalf("no rule commented %q in:\n%s", comment, listing)
	return 0
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a count: %q", s)
	}
	return n
}

// helperBackendCommand runs this test binary as the lab's background
// backends (TestHelperServeBackends), as `cnitrace-lab backends` runs in
// the CLI.
func helperBackendCommand(name string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServeBackends$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "CNITRACE_LAB_HELPER_BACKENDS_OF="+name)
	return cmd
}

// TestHelperServeBackends is the background process of
// TestPrivilegedDownStopsBackends: it serves until SIGTERM.
func TestHelperServeBackends(t *testing.T) {
	name := os.Getenv("CNITRACE_LAB_HELPER_BACKENDS_OF")
	if name == "" {
		t.Skip("skipping: helper process of TestPrivilegedDownStopsBackends")
	}
	ctx, stop := signal.NotifyContext(t.Context(), syscall.SIGTERM)
	defer stop()
	if err := lab.ServeBackends(ctx, name); err != nil {
		t.Fatal(err)
	}
}

// A lab with a kube-proxy Service built by a process that exits, its TCP
// servers in a background process and its DNS servers daemons: the
// Service answers after its builder is gone, a borrowed lab's Close leaves
// them running, and Down stops them all and removes RunDir.
func TestPrivilegedDownStopsBackends(t *testing.T) {
	labtest.Require(t)
	name := uniqueName(t, "cnitrace-back-")
	t.Cleanup(func() { lab.Down(name) }) // only if the checks below fail
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperUpAndExit$", "-test.v")
	cmd.Env = append(os.Environ(), "CNITRACE_LAB_HELPER_NAME="+name, "CNITRACE_LAB_HELPER_SERVICE=nftables")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child Up: %v\n%s", err, out)
	}
	for _, f := range []string{lab.BackendPIDFile(name), lab.BackendLogFile(name)} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("no %s after Up with BackendCommand: %v", f, err)
		}
	}
	l, err := lab.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Backends {
		t.Errorf("Open(%s): Backends false, want true (it has %s)", name, lab.RunDir(name))
	}
	checkProcessesInPods(t, l, 5) // 4 DNS servers and the TCP servers' process
	eps := []netip.Addr{l.Nodes[1].Pod.Addr, l.Nodes[1].Sibling.Addr}
	checkSpread(t, "TCP to the ClusterIP", spread(t, l.Nodes[0].Pod.NS, netip.AddrPortFrom(lab.ServiceAddr, 80), tries), eps)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if pids, _ := lab.Processes(name); len(pids) != 5 {
		t.Errorf("after closing a borrowed lab: processes %v, want the 5 still running", pids)
	}
	if err := lab.Down(name); err != nil {
		t.Fatal(err)
	}
	labtest.CheckGone(t, name)
}

// A lab whose Up fails after its backends started leaves no process.
func TestPrivilegedUpFailureStopsBackends(t *testing.T) {
	labtest.Require(t)
	for _, step := range []string{"start backends", "set up faults"} {
		t.Run(step, func(t *testing.T) {
			name := uniqueName(t, "cnitrace-bfail-")
			t.Cleanup(func() { lab.Down(name) }) // only if the checks below fail
			cfg := lab.Config{Name: name, Service: true, ServiceMode: lab.ServiceIPTables}
			l, err := lab.UpFailingAt(t.Context(), cfg, func(s string) error {
				if s == step {
					if pids, _ := lab.Processes(name); step == "set up faults" && len(pids) != 4 {
						t.Errorf("before %q: processes %v, want 4 DNS servers", step, pids)
					}
					return errors.New("injected failure")
				}
				return nil
			})
			if err == nil {
				l.Close()
				t.Fatal("Up succeeded")
			}
			labtest.CheckGone(t, name)
		})
	}
}
