package nodestate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSysctlNames(t *testing.T) {
	names := sysctlNames([]string{"flannel.1", "cni0", "flannel.1"})
	for _, want := range []string{"net.ipv4.ip_forward", "net.ipv4.conf.cni0.rp_filter", "net.ipv4.conf.flannel/1.rp_filter", "net.ipv6.conf.flannel/1.mtu"} {
		if !slices.Contains(names, want) {
			t.Errorf("sysctlNames lacks %s: %v", want, names)
		}
	}
	if got, want := len(names), len(globalSysctls)+2*len(deviceSysctls); got != want {
		t.Errorf("got %d names, want %d (each device once)", got, want)
	}
	if i, j := slices.Index(names, "net.ipv4.conf.cni0.forwarding"), slices.Index(names, "net.ipv4.conf.flannel/1.forwarding"); i > j {
		t.Errorf("devices are not in name order: cni0 at %d, flannel.1 at %d", i, j)
	}
}

func TestSysctlPath(t *testing.T) {
	for name, want := range map[string]string{
		"net.ipv4.ip_forward":                "net/ipv4/ip_forward",
		"net.ipv4.conf.flannel/1.rp_filter":  "net/ipv4/conf/flannel.1/rp_filter",
		"net.bridge.bridge-nf-call-iptables": "net/bridge/bridge-nf-call-iptables",
	} {
		if got := sysctlPath(name); got != want {
			t.Errorf("sysctlPath(%q) = %q, want %q", name, got, want)
		}
	}
}

// A fake /proc/sys: values are trimmed, an absent sysctl is null and no
// error, one that cannot be read is null and an error.
func TestReadSysctls(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "net/ipv4/ip_forward", "1\n")
	writeFile(t, dir, "net/ipv4/conf/flannel.1/rp_filter", "2\n")
	writeFile(t, dir, "net/ipv4/ping_group_range", "0\t2147483647\n")
	if err := os.MkdirAll(filepath.Join(dir, "net/ipv4/conf/all/forwarding"), 0o755); err != nil { // a directory: unreadable as a value
		t.Fatal(err)
	}
	names := []string{"net.ipv4.ip_forward", "net.ipv4.conf.flannel/1.rp_filter", "net.ipv4.ping_group_range",
		"net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.forwarding"}
	values, errs := readSysctls(dir, names)
	got, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"net.bridge.bridge-nf-call-iptables":null,"net.ipv4.conf.all.forwarding":null,"net.ipv4.conf.flannel/1.rp_filter":"2","net.ipv4.ip_forward":"1","net.ipv4.ping_group_range":"0\t2147483647"}`
	if string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if len(errs) != 1 {
		t.Fatalf("got errors %v, want one, for the directory", errs)
	}
}
