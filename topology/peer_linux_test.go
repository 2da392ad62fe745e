package topology

import "testing"

func TestSysctlName(t *testing.T) {
	for path, want := range map[string]string{
		"net/ipv4/ip_forward":                "net.ipv4.ip_forward",
		"net/ipv4/conf/cni0/forwarding":      "net.ipv4.conf.cni0.forwarding",
		"net/ipv4/conf/flannel.1/forwarding": "net.ipv4.conf.flannel/1.forwarding",
		"net/ipv6/conf/all/forwarding":       "net.ipv6.conf.all.forwarding",
	} {
		if got := sysctlName(path); got != want {
			t.Errorf("sysctlName(%q) = %q, want %q", path, got, want)
		}
	}
}
