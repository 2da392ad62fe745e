package containerd

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/topology/lab"
)

func TestConfigTOML(t *testing.T) {
	got := string(configTOML(layout{dir: "/tmp/d"}, PauseImage))
	// Each line answers a pitfall of real-runtime.md, or keeps the daemon's
	// files under its own directory.
	for _, want := range []string{
		"version = 2\n",
		`root = "/tmp/d/root"`,
		`state = "/tmp/d/state"`,
		`"io.containerd.internal.v1.opt"`,
		"[grpc]\n  address = \"/tmp/d/containerd.sock\"",
		`[plugins."io.containerd.grpc.v1.cri"]`,
		`sandbox_image = "cnitrace.invalid/pause:1"`,
		"netns_mounts_under_state_dir = true",
		"restrict_oom_score_adj = true",
		"disable_apparmor = true",
		`snapshotter = "overlayfs"`,
		`runtime_type = "io.containerd.runc.v2"`,
		"SystemdCgroup = false",
		`bin_dir = "/usr/lib/cni"`,
		`conf_dir = "/tmp/d/net.d"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}

func TestBridgeConfList(t *testing.T) {
	node := &lab.Node{Name: "x-n1", PodCIDR: netip.MustParsePrefix("10.244.1.0/24")}
	b, err := BridgeConfList(NodeBridge(node))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []struct {
			Type      string `json:"type"`
			Bridge    string `json:"bridge"`
			IsGateway bool   `json:"isGateway"`
			IPMasq    bool   `json:"ipMasq"`
			MTU       int    `json:"mtu"`
			IPAM      struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	if len(conf.Plugins) != 1 {
		t.Fatalf("got %d plugins, want 1:\n%s", len(conf.Plugins), b)
	}
	p := conf.Plugins[0]
	rng := p.IPAM.Ranges[0][0]
	if p.Type != "bridge" || p.Bridge != lab.BridgeName || !p.IsGateway || !p.IPMasq || p.MTU != lab.MTU || p.IPAM.Type != "host-local" ||
		rng["subnet"] != "10.244.1.0/24" || rng["rangeStart"] != "10.244.1.16" || rng["rangeEnd"] != "10.244.1.254" || rng["gateway"] != "10.244.1.1" {
		t.Errorf("unexpected network:\n%s", b)
	}
}

func TestBridgeConfListInvalid(t *testing.T) {
	good := Bridge{Name: "n", Bridge: "br0", Subnet: netip.MustParsePrefix("10.1.0.0/24")}
	for _, tt := range []struct {
		name string
		edit func(*Bridge)
	}{
		{"no name", func(b *Bridge) { b.Name = "" }},
		{"no bridge", func(b *Bridge) { b.Bridge = "" }},
		{"no subnet", func(b *Bridge) { b.Subnet = netip.Prefix{} }},
		{"IPv6 subnet", func(b *Bridge) { b.Subnet = netip.MustParsePrefix("fd00::/64") }},
		{"gateway outside", func(b *Bridge) { b.Gateway = netip.MustParseAddr("10.2.0.1") }},
		{"range outside", func(b *Bridge) { b.RangeEnd = netip.MustParseAddr("10.1.1.1") }},
	} {
		b := good
		tt.edit(&b)
		if _, err := BridgeConfList(b); err == nil {
			t.Errorf("%s: got no error", tt.name)
		}
	}
	if _, err := BridgeConfList(good); err != nil {
		t.Errorf("minimal network: %v", err)
	}
}
