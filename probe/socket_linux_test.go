package probe

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

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
		addr   string
		port   uint16
		family uint16
		ip     string
		zone   uint32
	}{
		{"10.244.2.7", 0, unix.AF_INET, "10.244.2.7", 0},
		{"::ffff:10.244.2.7", 53, unix.AF_INET, "10.244.2.7", 0},
		{"fd00::7", 8080, unix.AF_INET6, "fd00::7", 0},
		{"fe80::1%3", 0, unix.AF_INET6, "fe80::1", 3},
	} {
		sa, err := sockaddr(netip.MustParseAddr(tc.addr), tc.port)
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		var family, size uint32
		var port []byte // network order, as the kernel reads it
		var ip netip.Addr
		var zone uint32
		if in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.buf)); in.Family == unix.AF_INET {
			family, size, port, ip = unix.AF_INET, unix.SizeofSockaddrInet4, (*[2]byte)(unsafe.Pointer(&in.Port))[:], netip.AddrFrom4(in.Addr)
		} else {
			family, size, port, ip, zone = uint32(sa.buf.Family), unix.SizeofSockaddrInet6, (*[2]byte)(unsafe.Pointer(&sa.buf.Port))[:], netip.AddrFrom16(sa.buf.Addr), sa.buf.Scope_id
		}
		if family != uint32(tc.family) || sa.len != size || binary.BigEndian.Uint16(port) != tc.port || ip != netip.MustParseAddr(tc.ip) || zone != tc.zone {
			t.Errorf("%s port %d: family %d, length %d, port %d, address %v, zone %d; want %d, %d, %d, %s, %d",
				tc.addr, tc.port, family, sa.len, binary.BigEndian.Uint16(port), ip, zone, tc.family, size, tc.port, tc.ip, tc.zone)
		}
	}
	for _, bad := range []netip.Addr{{}, netip.MustParseAddr("fe80::1%eth0")} {
		if sa, err := sockaddr(bad, 0); err == nil {
			t.Errorf("sockaddr(%v) = %#v, want an error", bad, sa)
		}
	}
}
