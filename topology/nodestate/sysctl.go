package nodestate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Sysctls is the sysctls.json of a namespace: every sysctl asked for, by
// its sysctl(8) name, with its value as the kernel prints it (trimmed), or
// null when the namespace has no such sysctl (a bridge-nf-call-* without
// br_netfilter, a device's when the device is gone). A sysctl that exists
// but cannot be read is null too, and the snapshot's gaps say why.
type Sysctls struct {
	NetNS   string             `json:"netns"`
	Sysctls map[string]*string `json:"sysctls"`
}

// globalSysctls are the namespace-wide sysctls that change how a path
// behaves: forwarding, reverse-path filtering, bridged traffic through
// iptables, conntrack's fill, and whether and how fast ICMP is answered.
var globalSysctls = []string{
	"net.ipv4.ip_forward",
	"net.ipv6.conf.all.forwarding",
	"net.ipv4.conf.all.forwarding",
	"net.ipv4.conf.all.rp_filter",
	"net.ipv4.conf.default.rp_filter",
	"net.ipv4.conf.all.accept_local",
	"net.ipv4.conf.default.accept_local",
	"net.ipv4.conf.all.route_localnet",
	"net.ipv4.conf.all.proxy_arp",
	"net.bridge.bridge-nf-call-iptables",
	"net.bridge.bridge-nf-call-ip6tables",
	"net.bridge.bridge-nf-call-arptables",
	"net.netfilter.nf_conntrack_count",
	"net.netfilter.nf_conntrack_max",
	"net.ipv4.icmp_echo_ignore_all",
	"net.ipv4.icmp_ratelimit",
	"net.ipv4.icmp_ratemask",
	"net.ipv6.icmp.echo_ignore_all",
	"net.ipv6.icmp.ratelimit",
}

// deviceSysctls are the per-device ones, asked for every device of the
// path in the namespace (DEV is replaced by its name): effective
// rp_filter is the larger of all's and the device's; forwarding decides
// whether IPv4 entering by the device is routed on; proxy_arp is how
// Calico answers for 169.254.1.1; the IPv6 MTU is the device's own.
var deviceSysctls = []string{
	"net.ipv4.conf.DEV.forwarding",
	"net.ipv4.conf.DEV.rp_filter",
	"net.ipv4.conf.DEV.accept_local",
	"net.ipv4.conf.DEV.route_localnet",
	"net.ipv4.conf.DEV.proxy_arp",
	"net.ipv6.conf.DEV.forwarding",
	"net.ipv6.conf.DEV.disable_ipv6",
	"net.ipv6.conf.DEV.mtu",
}

// sysctlNames returns the sysctls to read in a namespace whose path
// devices are devs: the global ones, then each device's, devices sorted.
// A device name is spelled as sysctl(8) does: its dots become slashes
// (net.ipv4.conf.flannel/1.rp_filter).
func sysctlNames(devs []string) []string {
	names := slices.Clone(globalSysctls)
	devs = slices.Clone(devs)
	slices.Sort(devs)
	for _, dev := range slices.Compact(devs) {
		for _, n := range deviceSysctls {
			names = append(names, strings.Replace(n, "DEV", strings.ReplaceAll(dev, ".", "/"), 1))
		}
	}
	return names
}

// sysctlPath turns a sysctl(8) name into its path under /proc/sys:
// net.ipv4.conf.flannel/1.rp_filter is net/ipv4/conf/flannel.1/rp_filter.
func sysctlPath(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, "/", ".")
	}
	return filepath.Join(parts...)
}

// readSysctls reads every named sysctl under dir (/proc/sys, opened on a
// thread inside the namespace: the files under /proc/sys/net belong to the
// namespace of the thread that opens them). An absent sysctl is nil and no
// error; one that cannot be read is nil and one of the errors returned.
func readSysctls(dir string, names []string) (map[string]*string, []error) {
	values := make(map[string]*string, len(names))
	var errs []error
	for _, name := range names {
		v, err := readSysctl(filepath.Join(dir, sysctlPath(name)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			values[name] = nil
		case err != nil:
			values[name] = nil
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", name, err))
		default:
			values[name] = &v
		}
	}
	return values, errs
}

// readSysctl reads one sysctl file: at most maxSysctlValue bytes, trimmed.
func readSysctl(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSysctlValue))
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSpace(b)), nil
}
