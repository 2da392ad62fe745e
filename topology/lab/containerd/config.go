package containerd

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// CNIBinDir is where Debian's containernetworking-plugins installs the
// reference plugins.
const CNIBinDir = "/usr/lib/cni"

// Bridge is a CNI network of the reference bridge plugin with host-local
// addresses, as BridgeConfList renders it.
type Bridge struct {
	Name   string       // the CNI network's name
	Bridge string       // the bridge device, created when missing
	Subnet netip.Prefix // host-local's subnet
	// RangeStart and RangeEnd bound the addresses host-local hands out
	// (both within Subnet); invalid means the whole subnet.
	RangeStart, RangeEnd netip.Addr
	Gateway              netip.Addr // the bridge's address, the pods' default gateway
	MTU                  int        // of the bridge and the veths; 0 means the plugin's 1500
	IPMasq               bool       // masquerade traffic from the pods leaving Subnet
}

// NodeBridge is the network Start gives a lab node's pods by default: the
// bridge plugin on the node's own lab.BridgeName (the lab built it; the
// plugin finds it and enslaves its veths to it, as on a flannel node after
// the first pod) with isGateway and ipMasq, host-local in the node's pod
// CIDR from .16 to .254, clear of the lab's own pods (.2, .3).
func NodeBridge(node *lab.Node) Bridge {
	base := node.PodCIDR.Masked().Addr().As4()
	at := func(host byte) netip.Addr { a := base; a[3] = host; return netip.AddrFrom4(a) }
	return Bridge{
		Name:       "cnitrace-bridge",
		Bridge:     lab.BridgeName,
		Subnet:     node.PodCIDR.Masked(),
		RangeStart: at(16),
		RangeEnd:   at(254),
		Gateway:    at(1),
		MTU:        lab.MTU,
		IPMasq:     true,
	}
}

// BridgeConfList renders b as a CNI network configuration list
// (cniVersion 1.0.0): one bridge plugin with isGateway and host-local
// IPAM with a default route via the gateway.
func BridgeConfList(b Bridge) ([]byte, error) {
	plugin, err := bridgePlugin(b)
	if err != nil {
		return nil, err
	}
	return confList(b.Name, plugin)
}

// bridgePlugin is b's bridge plugin entry.
func bridgePlugin(b Bridge) (map[string]any, error) {
	if b.Name == "" || b.Bridge == "" {
		return nil, fmt.Errorf("render CNI network %q: needs a name and a bridge", b.Name)
	}
	ipam, err := hostLocal(b.Name, addrRange{b.Subnet, b.RangeStart, b.RangeEnd, b.Gateway}, true)
	if err != nil {
		return nil, err
	}
	plugin := map[string]any{
		"type":      "bridge",
		"bridge":    b.Bridge,
		"isGateway": true,
		"ipMasq":    b.IPMasq,
		"ipam":      ipam,
	}
	if b.MTU > 0 {
		plugin["mtu"] = b.MTU
	}
	return plugin, nil
}

// addrRange is what host-local hands out: addresses of Subnet from Start
// to End (the whole subnet when invalid), and the pods' Gateway (none when
// invalid).
type addrRange struct {
	Subnet         netip.Prefix
	Start, End, GW netip.Addr
}

// hostLocal renders host-local IPAM over r for network name, with a
// default route via the gateway when defaultRoute is set.
func hostLocal(name string, r addrRange, defaultRoute bool) (map[string]any, error) {
	if !r.Subnet.IsValid() || !r.Subnet.Addr().Is4() {
		return nil, fmt.Errorf("render CNI network %q: needs an IPv4 subnet", name)
	}
	rng := map[string]string{"subnet": r.Subnet.String()}
	for _, f := range []struct {
		key  string
		addr netip.Addr
	}{{"rangeStart", r.Start}, {"rangeEnd", r.End}, {"gateway", r.GW}} {
		if !f.addr.IsValid() {
			continue
		}
		if !r.Subnet.Contains(f.addr) {
			return nil, fmt.Errorf("render CNI network %q: %s %s is not in %s", name, f.key, f.addr, r.Subnet)
		}
		rng[f.key] = f.addr.String()
	}
	ipam := map[string]any{"type": "host-local", "ranges": [][]map[string]string{{rng}}}
	if defaultRoute {
		ipam["routes"] = []map[string]string{{"dst": "0.0.0.0/0"}}
	}
	return ipam, nil
}

// confList renders a CNI network configuration list (cniVersion 1.0.0)
// called name, of plugins in chain order.
func confList(name string, plugins ...map[string]any) ([]byte, error) {
	list := make([]any, len(plugins))
	for i, p := range plugins {
		list[i] = p
	}
	conf := map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": list}
	out, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render CNI network %q: %w", name, err)
	}
	return append(out, '\n'), nil
}

// layout is where one daemon keeps its files, all under dir.
type layout struct {
	dir string
}

func (l layout) root() string    { return filepath.Join(l.dir, "root") }
func (l layout) state() string   { return filepath.Join(l.dir, "state") }
func (l layout) socket() string  { return filepath.Join(l.dir, "containerd.sock") }
func (l layout) config() string  { return filepath.Join(l.dir, "config.toml") }
func (l layout) confDir() string { return filepath.Join(l.dir, "net.d") }
func (l layout) varLib() string  { return filepath.Join(l.dir, "var-lib") } // bound on /var/lib
func (l layout) cgroup() string  { return filepath.Join(l.dir, "cgroup") }  // where /sys/fs/cgroup waits while /sys is remounted
func (l layout) logs() string    { return filepath.Join(l.dir, "pods") }
func (l layout) log() string     { return filepath.Join(l.dir, "containerd.log") }
func (l layout) image() string   { return filepath.Join(l.dir, "pause.tar") }

// dirs are the directories Start creates.
func (l layout) dirs() []string {
	return []string{l.root(), l.state(), l.confDir(), l.varLib(), l.cgroup(), l.logs()}
}

// disabledPlugins are containerd plugins a lab daemon does without: opt
// would create /opt/containerd on the host, and the snapshotters other
// than overlayfs only log why they cannot work here.
var disabledPlugins = []string{
	"io.containerd.internal.v1.opt",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
}

// configTOML renders containerd's configuration (version 2) for a daemon
// kept under l, whose CRI plugin runs its sandboxes from image. Each
// setting answers a pitfall of docs/real-runtime.md (in /work/shared).
func configTOML(l layout, image string) []byte {
	q := strconv.Quote
	disabled := make([]string, len(disabledPlugins))
	for i, p := range disabledPlugins {
		disabled[i] = q(p)
	}
	lines := []string{
		"version = 2",
		"root = " + q(l.root()),
		"state = " + q(l.state()),
		"disabled_plugins = [" + strings.Join(disabled, ", ") + "]",
		"",
		"[grpc]",
		"  address = " + q(l.socket()),
		"[ttrpc]",
		"  address = " + q(l.socket()+".ttrpc"),
		"[metrics]",
		`  address = ""`,
		"",
		`[plugins."io.containerd.grpc.v1.cri"]`,
		"  sandbox_image = " + q(image),
		"  netns_mounts_under_state_dir = true # the pods' netns files stay in this daemon's state",
		"  restrict_oom_score_adj = true # no CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj",
		"  disable_apparmor = true",
		`  stream_server_address = "127.0.0.1"`,
		`  stream_server_port = "0"`,
		`  [plugins."io.containerd.grpc.v1.cri".containerd]`,
		`    snapshotter = "overlayfs"`,
		`    default_runtime_name = "runc"`,
		`    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
		`      runtime_type = "io.containerd.runc.v2"`,
		`      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`,
		"        SystemdCgroup = false",
		`  [plugins."io.containerd.grpc.v1.cri".cni]`,
		"    bin_dir = " + q(CNIBinDir),
		"    conf_dir = " + q(l.confDir()),
		"    max_conf_num = 1",
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}
