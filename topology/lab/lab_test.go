package lab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"cnitrace-ab12cd", true},
		{"a", true},
		{"lab-1", true},
		{"0", true},
		{strings.Repeat("a", MaxNameLen), true},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"", false},
		{"Lab", false},
		{"lab_1", false},
		{"lab.1", false},
		{"lab/1", false},
		{"../x", false},
		{"lab 1", false},
		{"-lab", false},
		{"lab-", false},
		{"läb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.name)
			if got := err == nil; got != tt.ok {
				t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestResolveNameRandom(t *testing.T) {
	a, err := resolveName(Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := resolveName(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two random names are both %q", a)
	}
	if !strings.HasPrefix(a, NamePrefix) || len(a) != len(NamePrefix)+6 {
		t.Errorf("got random name %q, want %s<6 hex>", a, NamePrefix)
	}
	if err := ValidateName(a); err != nil {
		t.Errorf("random name is invalid: %v", err)
	}
	if _, err := resolveName(Config{Name: "Bad_Name"}); err == nil {
		t.Error("resolveName accepted Bad_Name")
	}
}

func TestNSNamesRoundTrip(t *testing.T) {
	const name = "cnitrace-ab12cd"
	got := nsNames(name)
	want := []string{name + "-n1", name + "-n1-pod", name + "-n1-pod2", name + "-n2", name + "-n2-pod", name + "-n2-pod2", name + "-wire", name + "-ext"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("nsNames(%q) = %v, want %v", name, got, want)
	}
}

func TestNewNodeAddresses(t *testing.T) {
	n := newNode("cnitrace-ab12cd", 2)
	checks := []struct{ what, got, want string }{
		{"Name", n.Name, "cnitrace-ab12cd-n2"},
		{"NSPath", n.NSPath, "/run/netns/cnitrace-ab12cd-n2"},
		{"PodCIDR", n.PodCIDR.String(), "10.244.2.0/24"},
		{"UplinkAddr", n.uplinkPrefix().String(), "192.168.255.2/30"},
		{"gateway", n.gateway().String(), "10.244.2.1"},
		{"vtepAddr", n.vtepAddr().String(), "10.244.2.0"},
		{"vtepMAC", n.vtepMAC().String(), "0e:00:00:00:00:02"},
		{"Pod.Name", n.Pod.Name, "cnitrace-ab12cd-n2-pod"},
		{"Pod.NSPath", n.Pod.NSPath, "/run/netns/cnitrace-ab12cd-n2-pod"},
		{"Pod.Addr", n.Pod.Addr.String(), "10.244.2.2"},
		{"Sibling.NSPath", n.Sibling.NSPath, "/run/netns/cnitrace-ab12cd-n2-pod2"},
		{"Sibling.Addr", n.Sibling.Addr.String(), "10.244.2.3"},
		{"bridge address", ipNet(slash24(n.gateway())).String(), "10.244.2.1/24"},
		{"PodCIDR6", n.PodCIDR6.String(), "fd00:10:244:2::/64"},
		{"gateway6", n.gateway6().String(), "fd00:10:244:2::1"},
		{"vtepAddr6", n.vtepAddr6().String(), "fd00:10:244:2::"},
		{"Pod.Addr6", n.Pod.Addr6.String(), "fd00:10:244:2::2"},
		{"Sibling.Addr6", n.Sibling.Addr6.String(), "fd00:10:244:2::3"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("node 2 %s = %s, want %s", c.what, c.got, c.want)
		}
	}
}

// TestRoutedGateway6IsVethLinkLocal checks Calico's trick: the pod's IPv6
// gateway is the link-local address the kernel derives from the host
// veth's MAC (EUI-64: flip the universal/local bit, ff:fe in the middle),
// so the veth answers for it with no proxy NDP.
func TestRoutedGateway6IsVethLinkLocal(t *testing.T) {
	m := RoutedVethMAC
	eui := [16]byte{0xfe, 0x80, 8: m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]}
	if got := netip.AddrFrom16(eui); got != RoutedGateway6 {
		t.Errorf("link-local of %s is %s, RoutedGateway6 is %s", m, got, RoutedGateway6)
	}
}

func TestForwardRules(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(string(forwardRules(300)), "\n"), "\n")
	if got, want := len(lines), 302; got != want {
		t.Fatalf("got %d lines, want %d", got, want)
	}
	want := map[int]string{
		0:   "*filter",
		1:   "-A FORWARD -s 10.255.0.0/32 -d 10.255.0.0/32 -j DROP",
		257: "-A FORWARD -s 10.255.1.0/32 -d 10.255.1.0/32 -j DROP",
		300: "-A FORWARD -s 10.255.1.43/32 -d 10.255.1.43/32 -j DROP",
		301: "COMMIT",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	last := strings.Split(string(forwardRules(MaxBloatRules)), "\n")
	if got, want := last[len(last)-3], "-A FORWARD -s 10.255.255.255/32 -d 10.255.255.255/32 -j DROP"; got != want {
		t.Errorf("last rule of MaxBloatRules = %q, want %q", got, want)
	}
}

func TestCommandRefusesForeignNamespace(t *testing.T) {
	l := &Lab{Name: "cnitrace-ab12cd", Nodes: []*Node{newNode("cnitrace-ab12cd", 1)}}
	for _, path := range []string{"/proc/1/ns/net", "/proc/self/ns/net", "/run/netns/other", "/run/netns/cnitrace-ab12cd-n3"} {
		cmd := l.Command(context.Background(), path, "true")
		if cmd.Err == nil {
			t.Errorf("Command(%s) is allowed, want refused", path)
		} else if err := cmd.Run(); err == nil {
			t.Errorf("Command(%s).Run() succeeded, want error", path)
		}
	}
	if _, err := lookPath("nsenter", "util-linux"); err != nil {
		t.Skipf("skipping the accepted paths: %v", err)
	}
	for _, path := range []string{"/run/netns/cnitrace-ab12cd-n1", "/run/netns/cnitrace-ab12cd-n1-pod", "/run/netns/../netns/cnitrace-ab12cd-n1"} {
		if cmd := l.Command(context.Background(), path, "true"); cmd.Err != nil {
			t.Errorf("Command(%s) refused: %v", path, cmd.Err)
		}
	}
}

func TestBloatForwardChecksArguments(t *testing.T) {
	l := &Lab{Name: "cnitrace-ab12cd", Nodes: []*Node{newNode("cnitrace-ab12cd", 1), newNode("cnitrace-ab12cd", 2)}}
	ctx := context.Background()
	for _, node := range []int{0, 3, -1} {
		if err := l.BloatForward(ctx, node, 10); err == nil {
			t.Errorf("BloatForward(node %d) succeeded, want error", node)
		}
		if err := l.ClearForward(ctx, node); err == nil {
			t.Errorf("ClearForward(node %d) succeeded, want error", node)
		}
	}
	for _, rules := range []int{-1, MaxBloatRules + 1} {
		if err := l.BloatForward(ctx, 1, rules); err == nil {
			t.Errorf("BloatForward(%d rules) succeeded, want error", rules)
		}
	}
}

func TestLookPathNamesPackage(t *testing.T) {
	_, err := lookPath("cnitrace-no-such-program", "cnitrace-pkg")
	if err == nil || !strings.Contains(err.Error(), "install the Debian package cnitrace-pkg") {
		t.Errorf("got %v, want an error naming the Debian package", err)
	}
}
