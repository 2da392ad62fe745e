package containerd

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// plugins decodes a rendered conflist's plugins, failing t when it is not
// one of cniVersion 1.0.0 called name.
func plugins(t *testing.T, b []byte, name string) []map[string]any {
	t.Helper()
	var conf struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	if conf.CNIVersion != "1.0.0" || conf.Name != name {
		t.Errorf("got version %q name %q, want 1.0.0 and %q", conf.CNIVersion, conf.Name, name)
	}
	return conf.Plugins
}

// firstRange returns the first host-local range of plugin p.
func firstRange(t *testing.T, p map[string]any) map[string]any {
	t.Helper()
	ipam, _ := p["ipam"].(map[string]any)
	ranges, _ := ipam["ranges"].([]any)
	if ipam["type"] != "host-local" || len(ranges) == 0 {
		t.Fatalf("plugin %v has no host-local range", p)
	}
	rng, _ := ranges[0].([]any)
	first, _ := rng[0].(map[string]any)
	return first
}

var testNode = &lab.Node{Name: "x-n1", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), UplinkAddr: netip.MustParseAddr("192.168.255.1")}

func TestPTPConfList(t *testing.T) {
	b, err := PTPConfList(NodePTP(testNode))
	if err != nil {
		t.Fatal(err)
	}
	ps := plugins(t, b, "cnitrace-ptp")
	if len(ps) != 1 || ps[0]["type"] != "ptp" || ps[0]["ipMasq"] != false || ps[0]["mtu"] != float64(lab.MTU) {
		t.Fatalf("unexpected plugins:\n%s", b)
	}
	if rng := firstRange(t, ps[0]); rng["subnet"] != "10.244.1.0/24" || rng["rangeStart"] != "10.244.1.16" || rng["gateway"] != "10.244.1.1" {
		t.Errorf("unexpected range %v", rng)
	}
}

func TestMacvlanConfList(t *testing.T) {
	b, err := MacvlanConfList(NodeMacvlan(testNode))
	if err != nil {
		t.Fatal(err)
	}
	ps := plugins(t, b, "cnitrace-macvlan")
	if len(ps) != 1 || ps[0]["type"] != "macvlan" || ps[0]["master"] != lab.UplinkName || ps[0]["mode"] != "bridge" {
		t.Fatalf("unexpected plugins:\n%s", b)
	}
	rng := firstRange(t, ps[0])
	if rng["subnet"] != MacvlanSubnet.String() || rng["rangeStart"] != "198.51.100.16" || rng["rangeEnd"] != "198.51.100.30" || rng["gateway"] != nil {
		t.Errorf("unexpected range %v", rng)
	}
	if ipam := ps[0]["ipam"].(map[string]any); ipam["routes"] != nil {
		t.Errorf("macvlan pods get routes %v, want only the link's", ipam["routes"])
	}
	if _, err := MacvlanConfList(Macvlan{Name: "m", Subnet: MacvlanSubnet}); err == nil {
		t.Error("a network without a master: got no error")
	}
}

func TestBridgeBandwidthConfList(t *testing.T) {
	b, err := BridgeBandwidthConfList(NodeBridge(testNode), Bandwidth{EgressRate: 1e6, EgressBurst: 16000})
	if err != nil {
		t.Fatal(err)
	}
	ps := plugins(t, b, "cnitrace-bridge")
	if len(ps) != 2 || ps[0]["type"] != "bridge" || ps[1]["type"] != "bandwidth" {
		t.Fatalf("want bridge then bandwidth:\n%s", b)
	}
	if bw := ps[1]; bw["egressRate"] != 1e6 || bw["egressBurst"] != 16000.0 || bw["ingressRate"] != nil || bw["ingressBurst"] != nil {
		t.Errorf("unexpected shaping %v", bw)
	}
	for _, bad := range []Bandwidth{{}, {IngressRate: 1e6}, {EgressBurst: 8000}} {
		if _, err := BridgeBandwidthConfList(NodeBridge(testNode), bad); err == nil {
			t.Errorf("shaping %+v: got no error", bad)
		}
	}
}
