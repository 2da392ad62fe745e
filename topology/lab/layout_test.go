package lab

import (
	"strings"
	"testing"
)

func TestParseLayout(t *testing.T) {
	tests := []struct {
		in   string
		want Layout
		ok   bool
	}{
		{"flannel", LayoutFlannel, true},
		{"routed", LayoutRouted, true},
		{"", "", true}, // the default, flannel
		{"calico", "", false},
		{"Routed", "", false},
		{"routed ", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLayout(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseLayout(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "flannel or routed") {
				t.Errorf("error %q does not name the layouts", err)
			}
		})
	}
}

func TestLayoutWiring(t *testing.T) {
	if got := Layout("").wiring(); got != LayoutFlannel.wiring() {
		t.Errorf("empty layout lays out as %+v, want flannel's", got)
	}
	f, r := LayoutFlannel.wiring(), LayoutRouted.wiring()
	if f.bridge != BridgeName || f.vxlan != VXLANName || f.port != VXLANPort || f.vni != VNI {
		t.Errorf("flannel layout = %+v", f)
	}
	if r.bridge != "" || r.vxlan != RoutedVXLANName || r.port != 4789 || r.vni != RoutedVNI {
		t.Errorf("routed layout = %+v", r)
	}
	for _, name := range []string{r.vxlan, r.vethPrefix} { // unlike any real CNI's names
		for _, real := range []string{"cali", "lxc", "cilium", "flannel", "vxlan", "veth", "cni", "tunl", "genev"} {
			if strings.HasPrefix(name, real) {
				t.Errorf("routed name %q starts like a real CNI's %q", name, real)
			}
		}
	}
}

func TestFaultRulesRouted(t *testing.T) {
	got := strings.Split(strings.TrimSuffix(string(faultRules(Faults{ForwardRequestLoss: 0.3, ForwardReplyLoss: 0.1}, LayoutRouted)), "\n"), "\n")
	want := []string{
		"*filter",
		":CNITRACE-FORWARD-REQUEST - [0:0]",
		":CNITRACE-FORWARD-REPLY - [0:0]",
		`-A FORWARD -i rv+ -p icmp --icmp-type echo-request -m comment --comment "cnitrace forward-request probes" -j CNITRACE-FORWARD-REQUEST`,
		`-A FORWARD -i rv+ -p tcp --tcp-flags SYN,ACK,RST SYN -m comment --comment "cnitrace forward-request probes" -j CNITRACE-FORWARD-REQUEST`,
		`-A FORWARD -i rv+ -p udp -m comment --comment "cnitrace forward-request probes" -j CNITRACE-FORWARD-REQUEST`,
		`-A CNITRACE-FORWARD-REQUEST -m statistic --mode random --probability 0.3 -m comment --comment "cnitrace forward-request loss" -j DROP`,
		`-A FORWARD -o rv+ -p icmp --icmp-type echo-reply -m comment --comment "cnitrace forward-reply probes" -j CNITRACE-FORWARD-REPLY`,
		`-A FORWARD -o rv+ -p tcp --tcp-flags SYN,ACK SYN,ACK -m comment --comment "cnitrace forward-reply probes" -j CNITRACE-FORWARD-REPLY`,
		`-A FORWARD -o rv+ -p tcp --tcp-flags RST RST -m comment --comment "cnitrace forward-reply probes" -j CNITRACE-FORWARD-REPLY`,
		`-A FORWARD -o rv+ -p udp -m comment --comment "cnitrace forward-reply probes" -j CNITRACE-FORWARD-REPLY`,
		`-A CNITRACE-FORWARD-REPLY -m statistic --mode random --probability 0.1 -m comment --comment "cnitrace forward-reply loss" -j DROP`,
		"COMMIT",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("faultRules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
