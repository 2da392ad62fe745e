package probe

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestICMP6Filter checks the bitmap against the kernel's test
// (icmpv6_filter: a set bit blocks) for every type: only 129 passes.
func TestICMP6Filter(t *testing.T) {
	f := icmp6Filter(129)
	for typ := range 256 {
		blocked := f.Data[typ>>5]&(1<<(typ&31)) != 0
		if want := typ != 129; blocked != want {
			t.Errorf("type %d: blocked %v, want %v", typ, blocked, want)
		}
	}
	if f.Data[4] != 0xfffffffd {
		t.Errorf("word 4 (types 128-159) is %#08x, want 0xfffffffd", f.Data[4])
	}
	if none := icmp6Filter(); none.Data != [8]uint32{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)} {
		t.Errorf("icmp6Filter() = %#x, want every type blocked", none.Data)
	}
}

func TestSockaddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want unix.Sockaddr
	}{
		{"10.244.2.7", &unix.SockaddrInet4{Addr: [4]byte{10, 244, 2, 7}}},
		{"::ffff:10.244.2.7", &unix.SockaddrInet4{Addr: [4]byte{10, 244, 2, 7}}},
		{"fd00::7", &unix.SockaddrInet6{Addr: netip.MustParseAddr("fd00::7").As16()}},
		{"fe80::1%3", &unix.SockaddrInet6{Addr: netip.MustParseAddr("fe80::1").As16(), ZoneId: 3}},
	} {
		got, err := sockaddr(netip.MustParseAddr(tc.addr), 0)
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		switch w := tc.want.(type) {
		case *unix.SockaddrInet4:
			if g, ok := got.(*unix.SockaddrInet4); !ok || g.Addr != w.Addr {
				t.Errorf("%s: got %#v, want %#v", tc.addr, got, w)
			}
		case *unix.SockaddrInet6:
			if g, ok := got.(*unix.SockaddrInet6); !ok || g.Addr != w.Addr || g.ZoneId != w.ZoneId {
				t.Errorf("%s: got %#v, want %#v", tc.addr, got, w)
			}
		}
	}
	for _, bad := range []netip.Addr{{}, netip.MustParseAddr("fe80::1%eth0")} {
		if sa, err := sockaddr(bad, 0); err == nil {
			t.Errorf("sockaddr(%v) = %#v, want an error", bad, sa)
		}
	}
}
