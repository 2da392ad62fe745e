package probe

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// icmpErrOOB is the control data of an ICMP error on an IPv4 socket's
// error queue: IP_RECVERR with struct sock_extended_err (errno, origin
// ICMP, type, code) and the sender as a sockaddr_in.
func icmpErrOOB(typ, code uint8, from netip.Addr) []byte {
	ee := extErr(unix.SO_EE_ORIGIN_ICMP, 0, 0)
	binary.NativeEndian.PutUint32(ee[0:], uint32(unix.ECONNREFUSED))
	ee[5], ee[6] = typ, code
	binary.NativeEndian.PutUint16(ee[16:], unix.AF_INET)
	copy(ee[20:], from.AsSlice())
	return cmsg(unix.SOL_IP, unix.IP_RECVERR, ee)
}

func TestParseICMPErr(t *testing.T) {
	router := netip.MustParseAddr("10.244.1.1")
	e, ok := parseICMPErr(icmpErrOOB(3, 3, router), netip.MustParseAddrPort("10.96.0.10:53"))
	if !ok || e.v6 || e.typ != 3 || e.code != 3 || e.from != router || e.dst != netip.MustParseAddrPort("10.96.0.10:53") {
		t.Errorf("port unreachable: got %+v, %v", e, ok)
	}
	// ICMPv6 on an IPv6 socket: the offender a sockaddr_in6.
	ee := extErr(unix.SO_EE_ORIGIN_ICMP6, 0, 0)
	ee[5], ee[6] = 1, 4
	ee = append(ee, make([]byte, 12)...) // sockaddr_in6 is 28 bytes
	binary.NativeEndian.PutUint16(ee[16:], unix.AF_INET6)
	copy(ee[24:], netip.MustParseAddr("fd00::1").AsSlice())
	e, ok = parseICMPErr(cmsg(unix.SOL_IPV6, unix.IPV6_RECVERR, ee), netip.MustParseAddrPort("[fd00::a]:53"))
	if !ok || !e.v6 || e.typ != 1 || e.code != 4 || e.from != netip.MustParseAddr("fd00::1") || e.dst.Port() != 53 {
		t.Errorf("ICMPv6 port unreachable: got %+v, %v", e, ok)
	}
	// A TX stamp, a local error and garbage are not ICMP errors.
	for name, oob := range map[string][]byte{
		"stamp":       stampOOB(unix.SCM_TSTAMP_SCHED, 1, time.Unix(1795579585, 0)),
		"local error": cmsg(unix.SOL_IP, unix.IP_RECVERR, extErr(unix.SO_EE_ORIGIN_LOCAL, 0, 0)),
		"short":       cmsg(unix.SOL_IP, unix.IP_RECVERR, make([]byte, 8)),
		"no cmsg":     nil,
		"truncated":   icmpErrOOB(3, 3, router)[:10],
	} {
		if e, ok := parseICMPErr(oob, netip.AddrPort{}); ok {
			t.Errorf("%s: parsed %+v", name, e)
		}
	}
	if a := offender([]byte{2, 0}); a.IsValid() {
		t.Errorf("offender of 2 bytes: %v", a)
	}
}

// FuzzParseICMPErr: no control data panics the ICMP error parser.
func FuzzParseICMPErr(f *testing.F) {
	f.Add(icmpErrOOB(3, 3, netip.MustParseAddr("10.0.0.1")))
	f.Add(stampOOB(unix.SCM_TSTAMP_SND, 2, time.Unix(1795579585, 0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseICMPErr(b, netip.AddrPort{})
		offender(b)
	})
}

// TestRawName: msg_name as the kernel writes it, into a sockaddr_in6's
// room, comes back as the address and port parseICMPErr reads; an empty
// or foreign one as an invalid one.
func TestRawName(t *testing.T) {
	var v4, v6, unix6 unix.RawSockaddrInet6
	r4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&v4))
	r4.Family, r4.Addr = unix.AF_INET, [4]byte{10, 244, 2, 2}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&r4.Port))[:], 53)
	v6.Family, v6.Addr, v6.Scope_id = unix.AF_INET6, netip.MustParseAddr("fd00::7").As16(), 3
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&v6.Port))[:], 443)
	unix6.Family = unix.AF_UNIX
	tests := []struct {
		name string
		raw  *unix.RawSockaddrInet6
		n    uint32
		want netip.AddrPort
	}{
		{"ipv4", &v4, unix.SizeofSockaddrInet4, netip.MustParseAddrPort("10.244.2.2:53")},
		{"ipv6", &v6, unix.SizeofSockaddrInet6, netip.MustParseAddrPort("[fd00::7]:443")},
		{"empty, as a TX stamp's", &v4, 0, netip.AddrPort{}},
		{"ipv6 cut short", &v6, unix.SizeofSockaddrInet4, netip.AddrPort{}},
		{"another family", &unix6, unix.SizeofSockaddrInet6, netip.AddrPort{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawName(tc.raw, tc.n); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMmsghdrLayout: struct mmsghdr is a msghdr and an unsigned int,
// padded to the msghdr's alignment, as recvmmsg walks the array.
func TestMmsghdrLayout(t *testing.T) {
	var h mmsghdr
	want := (unsafe.Sizeof(h.hdr) + 4 + unsafe.Alignof(h.hdr) - 1) &^ (unsafe.Alignof(h.hdr) - 1)
	if got := unsafe.Sizeof(h); got != want || unsafe.Offsetof(h.len) != unsafe.Sizeof(h.hdr) {
		t.Errorf("mmsghdr is %d bytes with len at %d, want %d with len at %d", got, unsafe.Offsetof(h.len), want, unsafe.Sizeof(h.hdr))
	}
}
