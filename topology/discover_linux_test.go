package topology

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestNumbered(t *testing.T) {
	addr := func(cidr string) netlink.Addr {
		ip, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return netlink.Addr{IPNet: n}
	}
	tests := []struct {
		name  string
		addrs []netlink.Addr
		want  bool
	}{
		{"none", nil, false},
		{"IPv6 link-local only (Calico's host veth)", []netlink.Addr{addr("fe80::ecee:eeff:feee:eeee/64")}, false},
		{"IPv6 global", []netlink.Addr{addr("fd00:10:244:1::1/64")}, true},
		{"IPv6 link-local and global", []netlink.Addr{addr("fe80::1/64"), addr("fd00:10:244:1::1/64")}, true},
		{"IPv4", []netlink.Addr{addr("192.168.255.1/30")}, true},
		{"IPv4 link-local still numbers an IPv4 link", []netlink.Addr{addr("169.254.1.1/32")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := numbered(tt.addrs); got != tt.want {
				t.Errorf("numbered(%v) = %v, want %v", tt.addrs, got, tt.want)
			}
		})
	}
}
