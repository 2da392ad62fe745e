package topology

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// unhex decodes a hexdump written with spaces and newlines.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hexdump: %v", err)
	}
	return b
}

// TestDumpRequest checks the dump request's bytes (after the nlmsghdr's
// length, type, flags; its sequence number varies) attribute by attribute,
// as the kernel parses them: ctnetlink_alloc_filter needs CTA_TUPLE_ORIG
// with every value CTA_FILTER_ORIG_FLAGS names, and NLA_F_NESTED on
// CTA_FILTER (nla_parse_nested is strict).
func TestDumpRequest(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("skipping: the bytes below are a little-endian host's")
	}
	src, dst := netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("10.96.0.10")
	src6, dst6 := netip.MustParseAddr("fd00::5"), netip.MustParseAddr("fd00::10")
	for _, tc := range []struct {
		name string
		f    ConntrackFilter
		want string // nfgenmsg and attributes
	}{{
		name: "tcp4",
		f:    ConntrackFilter{Family: unix.AF_INET, Proto: unix.IPPROTO_TCP, Src: src, Dst: dst, Port: 80},
		want: `02 00 00 00` + // nfgenmsg: AF_INET, NFNETLINK_V0, res_id 0
			`2c 00 01 80` + // CTA_TUPLE_ORIG|NLA_F_NESTED, 44 bytes
			`14 00 01 80  08 00 01 00 0a f4 01 05  08 00 02 00 0a 60 00 0a` + // CTA_TUPLE_IP{V4_SRC, V4_DST}
			`14 00 02 80  05 00 01 00 06 00 00 00  06 00 03 00 00 50 00 00` + // CTA_TUPLE_PROTO{NUM 6, DST_PORT 80 (big-endian)}
			`14 00 19 80  08 00 01 00 2b 00 00 00  08 00 02 00 00 00 00 00`, // CTA_FILTER{ORIG_FLAGS IP_SRC|IP_DST|PROTO_NUM|PROTO_DST_PORT, REPLY_FLAGS 0}
	}, {
		name: "icmp4, any source",
		f:    ConntrackFilter{Family: unix.AF_INET, Proto: unix.IPPROTO_ICMP, Dst: dst},
		want: `02 00 00 00` +
			`1c 00 01 80` +
			`0c 00 01 80  08 00 02 00 0a 60 00 0a` + // CTA_TUPLE_IP{V4_DST}
			`0c 00 02 80  05 00 01 00 01 00 00 00` + // CTA_TUPLE_PROTO{NUM 1}: no port for ICMP
			`14 00 19 80  08 00 01 00 0a 00 00 00  08 00 02 00 00 00 00 00`, // IP_DST|PROTO_NUM
	}, {
		name: "tcp6: addresses are left to Match",
		f:    ConntrackFilter{Family: unix.AF_INET6, Proto: unix.IPPROTO_TCP, Src: src6, Dst: dst6, Port: 443},
		want: `0a 00 00 00` + // AF_INET6
			`18 00 01 80` +
			`14 00 02 80  05 00 01 00 06 00 00 00  06 00 03 00 01 bb 00 00` +
			`14 00 19 80  08 00 01 00 28 00 00 00  08 00 02 00 00 00 00 00`, // PROTO_NUM|PROTO_DST_PORT
	}, {
		name: "family only: the whole table, no filter",
		f:    ConntrackFilter{Family: unix.AF_INET6},
		want: `0a 00 00 00`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := dumpRequest(tc.f).Serialize()
			want := unhex(t, tc.want)
			if got := binary.NativeEndian.Uint32(b); int(got) != len(b) || len(b) != unix.SizeofNlMsghdr+len(want) {
				t.Errorf("nlmsg_len %d for %d bytes, want %d", got, len(b), unix.SizeofNlMsghdr+len(want))
			}
			if got, want := binary.NativeEndian.Uint16(b[4:]), uint16(unix.NFNL_SUBSYS_CTNETLINK<<8|1); got != want {
				t.Errorf("nlmsg_type %#x, want %#x (IPCTNL_MSG_CT_GET)", got, want)
			}
			if got, want := binary.NativeEndian.Uint16(b[6:]), uint16(unix.NLM_F_REQUEST|unix.NLM_F_DUMP); got != want {
				t.Errorf("nlmsg_flags %#x, want %#x", got, want)
			}
			if got := b[unix.SizeofNlMsghdr:]; !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", hex.Dump(got), hex.Dump(want))
			}
		})
	}
}

func TestFamilyAddr(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")
	for _, tc := range []struct {
		name   string
		family uint8
		a      netip.Addr
		want   netip.Addr
		ok     bool
	}{
		{"v4 in inet", unix.AF_INET, v4, v4, true},
		{"v4 in inet6 is mapped", unix.AF_INET6, v4, netip.MustParseAddr("::ffff:10.0.0.1"), true},
		{"v6 in inet6", unix.AF_INET6, v6, v6, true},
		{"v6 in inet", unix.AF_INET, v6, netip.Addr{}, false},
		{"invalid", unix.AF_INET, netip.Addr{}, netip.Addr{}, false},
	} {
		if got, ok := FamilyAddr(tc.family, tc.a); got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %s, %v, want %s, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestConntrackFilterMatch(t *testing.T) {
	pod, svc := netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("10.96.0.10")
	entry := func(fam, proto uint8, src, dst string, dport uint16) *netlink.ConntrackFlow {
		return &netlink.ConntrackFlow{FamilyType: fam, Forward: netlink.IPTuple{
			Protocol: proto, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst), DstPort: dport}}
	}
	v4 := func(proto uint8, src, dst string, dport uint16) *netlink.ConntrackFlow {
		e := entry(unix.AF_INET, proto, src, dst, dport)
		e.Forward.SrcIP, e.Forward.DstIP = e.Forward.SrcIP.To4(), e.Forward.DstIP.To4()
		return e
	}
	tcp := ConntrackFilter{Family: unix.AF_INET, Proto: unix.IPPROTO_TCP, Src: pod, Dst: svc, Port: 80}
	icmp := ConntrackFilter{Family: unix.AF_INET, Proto: unix.IPPROTO_ICMP, Dst: svc}
	for _, tc := range []struct {
		name string
		f    ConntrackFilter
		fl   *netlink.ConntrackFlow
		want bool
	}{
		{"tcp, the flow", tcp, v4(unix.IPPROTO_TCP, "10.244.1.5", "10.96.0.10", 80), true},
		{"tcp, another port", tcp, v4(unix.IPPROTO_TCP, "10.244.1.5", "10.96.0.10", 443), false},
		{"tcp, another source", tcp, v4(unix.IPPROTO_TCP, "10.244.1.6", "10.96.0.10", 80), false},
		{"tcp, another destination", tcp, v4(unix.IPPROTO_TCP, "10.244.1.5", "10.96.0.11", 80), false},
		{"tcp, udp entry", tcp, v4(unix.IPPROTO_UDP, "10.244.1.5", "10.96.0.10", 80), false},
		{"tcp, another family", tcp, entry(unix.AF_INET6, unix.IPPROTO_TCP, "::ffff:10.244.1.5", "::ffff:10.96.0.10", 80), false},
		{"icmp, any source", icmp, v4(unix.IPPROTO_ICMP, "10.1.1.1", "10.96.0.10", 0), true},
		{"icmp, tcp entry", icmp, v4(unix.IPPROTO_TCP, "10.1.1.1", "10.96.0.10", 0), false},
		{"family only", ConntrackFilter{Family: unix.AF_INET}, v4(unix.IPPROTO_UDP, "10.1.1.1", "10.2.2.2", 53), true},
		{"no addresses", ConntrackFilter{Family: unix.AF_INET}, &netlink.ConntrackFlow{FamilyType: unix.AF_INET}, true},
		{"no addresses, filter on one", icmp, &netlink.ConntrackFlow{FamilyType: unix.AF_INET, Forward: netlink.IPTuple{Protocol: unix.IPPROTO_ICMP}}, false},
	} {
		if got := tc.f.Match(tc.fl); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
