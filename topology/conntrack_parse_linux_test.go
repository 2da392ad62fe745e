package topology

import (
	"encoding/binary"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ctEntryMsg builds a conntrack entry as ctnetlink_fill_info sends it (the
// message after its nlmsghdr): nfgenmsg, then
// CTA_TUPLE_ORIG[CTA_TUPLE_IP[SRC DST] CTA_TUPLE_PROTO[NUM SPORT DPORT]]
// CTA_TUPLE_REPLY[...] CTA_STATUS CTA_MARK CTA_ID CTA_USE CTA_TIMEOUT
// CTA_PROTOINFO[CTA_PROTOINFO_TCP[STATE]] CTA_COUNTERS_ORIG[PAD PACKETS
// BYTES] CTA_COUNTERS_REPLY[PACKETS BYTES] CTA_ZONE, DNATed from
// 10.96.0.10:80 to 10.244.2.7:8080.
func ctEntryMsg() []byte {
	be16 := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	be64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	tuple := func(typ int, src, dst net.IP, sport, dport uint16) *nl.RtAttr {
		a := nl.NewRtAttr(unix.NLA_F_NESTED|typ, nil)
		ip := a.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_IP, nil)
		ip.AddRtAttr(nl.CTA_IP_V4_SRC, src.To4())
		ip.AddRtAttr(nl.CTA_IP_V4_DST, dst.To4())
		p := a.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_PROTO, nil)
		p.AddRtAttr(nl.CTA_PROTO_NUM, []byte{unix.IPPROTO_TCP})
		p.AddRtAttr(nl.CTA_PROTO_SRC_PORT, be16(sport))
		p.AddRtAttr(nl.CTA_PROTO_DST_PORT, be16(dport))
		return a
	}
	counters := func(typ int, packets, bytes uint64, pad bool) *nl.RtAttr {
		a := nl.NewRtAttr(unix.NLA_F_NESTED|typ, nil)
		if pad {
			a.AddRtAttr(5, nil) // CTA_COUNTERS_PAD, as nla_put_64bit aligns on some hosts
		}
		a.AddRtAttr(nl.CTA_COUNTERS_PACKETS, be64(packets))
		a.AddRtAttr(nl.CTA_COUNTERS_BYTES, be64(bytes))
		return a
	}
	pod, svc, backend := net.ParseIP("10.244.1.5"), net.ParseIP("10.96.0.10"), net.ParseIP("10.244.2.7")
	protoinfo := nl.NewRtAttr(unix.NLA_F_NESTED|nl.CTA_PROTOINFO, nil)
	protoinfo.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_PROTOINFO_TCP, nil).AddRtAttr(nl.CTA_PROTOINFO_TCP_STATE, []byte{3})
	b := (&nl.Nfgenmsg{NfgenFamily: unix.AF_INET}).Serialize()
	for _, a := range []*nl.RtAttr{
		tuple(nl.CTA_TUPLE_ORIG, pod, svc, 40000, 80),
		tuple(nl.CTA_TUPLE_REPLY, backend, pod, 8080, 40000),
		nl.NewRtAttr(nl.CTA_STATUS, be32(0x18e)),
		nl.NewRtAttr(nl.CTA_MARK, be32(0x4000)),
		nl.NewRtAttr(nl.CTA_ID, be32(0xdeadbeef)),
		nl.NewRtAttr(nl.CTA_USE, be32(1)),
		nl.NewRtAttr(nl.CTA_TIMEOUT, be32(431999)),
		protoinfo,
		counters(nl.CTA_COUNTERS_ORIG, 3, 180, true),
		counters(nl.CTA_COUNTERS_REPLY, 2, 120, false),
		nl.NewRtAttr(nl.CTA_ZONE, be16(7)),
	} {
		b = append(b, a.Serialize()...)
	}
	return b
}

func TestParseFlow(t *testing.T) {
	got, err := parseFlow(ctEntryMsg())
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	want := &netlink.ConntrackFlow{
		FamilyType: unix.AF_INET, Mark: 0x4000, Zone: 7, TimeOut: 431999,
		Forward: netlink.IPTuple{Protocol: unix.IPPROTO_TCP, SrcIP: net.IP{10, 244, 1, 5}, DstIP: net.IP{10, 96, 0, 10}, SrcPort: 40000, DstPort: 80, Packets: 3, Bytes: 180},
		Reverse: netlink.IPTuple{Protocol: unix.IPPROTO_TCP, SrcIP: net.IP{10, 244, 2, 7}, DstIP: net.IP{10, 244, 1, 5}, SrcPort: 8080, DstPort: 40000, Packets: 2, Bytes: 120},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestParseFlowMalformed: every truncation of a good message, and
// attributes with lengths that lie, are errors (or, cut at an attribute's
// end, fewer fields), never a panic.
func TestParseFlowMalformed(t *testing.T) {
	msg := ctEntryMsg()
	for n := range len(msg) {
		parseFlow(msg[:n]) // must not panic
	}
	attr := func(typ uint16, v ...byte) []byte {
		b := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofNlAttr+len(v)))
		return append(binary.NativeEndian.AppendUint16(b, typ), v...)
	}
	nfgen := []byte{unix.AF_INET, 0, 0, 0}
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"no nfgenmsg", []byte{2, 0}, "shorter than its nfgenmsg"},
		{"short header", append(nfgen, 8, 0), "shorter than an attribute header"},
		{"length below the header", append(nfgen, 2, 0, 7, 0), "attribute length 2"},
		{"length beyond the message", append(nfgen, 64, 0, 7, 0, 0, 0, 0, 0), "attribute length 64"},
		{"short timeout", append(nfgen, attr(nl.CTA_TIMEOUT, 1, 2)...), "want 4"},
		{"short zone", append(nfgen, attr(nl.CTA_ZONE, 1)...), "want 2"},
		{"short counter", append(nfgen, attr(unix.NLA_F_NESTED|nl.CTA_COUNTERS_ORIG, attr(nl.CTA_COUNTERS_BYTES, 1, 2, 3, 4)...)...), "want 8"},
		{"empty protocol", append(nfgen, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_ORIG, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_PROTO, attr(nl.CTA_PROTO_NUM)...)...)...), "empty protocol"},
		{"short port", append(nfgen, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_ORIG, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_PROTO, attr(nl.CTA_PROTO_DST_PORT, 1)...)...)...), "want 2"},
		{"v4 address of 3 bytes", append(nfgen, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_REPLY, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_IP, attr(nl.CTA_IP_V4_SRC, 10, 0, 0)...)...)...), "want 4"},
		{"v6 address of 4 bytes", append(nfgen, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_REPLY, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_IP, attr(nl.CTA_IP_V6_DST, 10, 0, 0, 1)...)...)...), "want 16"},
		{"nested length beyond its parent", append(nfgen, attr(unix.NLA_F_NESTED|nl.CTA_TUPLE_ORIG, 40, 0, 1, 0x80)...), "attribute length 40"},
	} {
		if _, err := parseFlow(tc.msg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParseFlow: no input makes parseFlow panic, and what it accepts
// holds only addresses of an address's size.
func FuzzParseFlow(f *testing.F) {
	msg := ctEntryMsg()
	f.Add(msg)
	f.Add(msg[:len(msg)/2])
	f.Add([]byte{unix.AF_INET6, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := parseFlow(b)
		if err != nil {
			return
		}
		for _, ip := range []net.IP{fl.Forward.SrcIP, fl.Forward.DstIP, fl.Reverse.SrcIP, fl.Reverse.DstIP} {
			if len(ip) != 0 && len(ip) != net.IPv4len && len(ip) != net.IPv6len {
				t.Errorf("address of %d bytes from %x", len(ip), b)
			}
		}
	})
}
