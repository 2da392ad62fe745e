package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

func TestProtoFor(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want icmpProto
	}{
		{"10.244.2.7", protoICMP},
		{"::ffff:10.244.2.7", protoICMP}, // v4-mapped: Run unmaps it and sends ICMPv4
		{"fd00::7", protoICMPv6},
		{"::1", protoICMPv6},
		{"fe80::1%2", protoICMPv6},
	} {
		if got := protoFor(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("protoFor(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestEchoRequest checks the bytes on the wire: ICMPv6 type 128 with the
// checksum left to the kernel, ICMPv4 type 8 with it filled in.
func TestEchoRequest(t *testing.T) {
	data := Payload{RunID: 0x1122334455667788, Seq: 0x10005}.Marshal(56)
	for _, tc := range []struct {
		proto    icmpProto
		typ      byte
		zeroCsum bool
	}{
		{protoICMP, 8, false},
		{protoICMPv6, 128, true},
	} {
		b, err := tc.proto.echoRequest(7, 0x10005, data)
		if err != nil {
			t.Fatalf("%v: %v", tc.proto, err)
		}
		// ICMP[type code csum id seq data]
		if len(b) != 8+len(data) || b[0] != tc.typ || b[1] != 0 {
			t.Fatalf("%v: got % x..., want type %d code 0 and %d bytes", tc.proto, b[:8], tc.typ, 8+len(data))
		}
		if csum := binary.BigEndian.Uint16(b[2:]); (csum == 0) != tc.zeroCsum {
			t.Errorf("%v: checksum %#04x, want zero: %v", tc.proto, csum, tc.zeroCsum)
		}
		if id, seq := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]); id != 7 || seq != 5 {
			t.Errorf("%v: id %d seq %d, want 7 and 5 (the low 16 bits)", tc.proto, id, seq)
		}
		if !bytes.Equal(b[8:], data) {
			t.Errorf("%v: data differs from the payload", tc.proto)
		}
	}
}

func TestMatchReply(t *testing.T) {
	const runID = 0xabcd
	echo := &icmp.Echo{ID: 1, Seq: 3, Data: Payload{RunID: runID, Seq: 70003}.Marshal(56)}
	other := &icmp.Echo{ID: 1, Seq: 3, Data: Payload{RunID: 0x9999, Seq: 70003}.Marshal(56)}
	plain := &icmp.Echo{ID: 1, Seq: 3, Data: []byte("iputils ping data, no token here")}
	req6, _ := protoICMPv6.echoRequest(1, 70003, echo.Data)
	unreach6, _ := (&icmp.Message{Type: ipv6.ICMPTypeDestinationUnreachable, Body: &icmp.DstUnreach{Data: req6}}).Marshal(nil)
	for _, tc := range []struct {
		name   string
		proto  icmpProto
		b      []byte
		wantOK bool
	}{
		{"v4 reply", protoICMP, marshalReply(protoICMP, echo), true},
		{"v6 reply", protoICMPv6, marshalReply(protoICMPv6, echo), true},
		{"v6 reply, id rewritten", protoICMPv6, marshalReply(protoICMPv6, &icmp.Echo{ID: 999, Seq: 3, Data: echo.Data}), true},
		{"v4 reply on a v6 run", protoICMPv6, marshalReply(protoICMP, echo), false},
		{"v6 reply on a v4 run", protoICMP, marshalReply(protoICMPv6, echo), false},
		{"v6 request looped back", protoICMPv6, req6, false},
		{"v6 unreachable quoting a probe", protoICMPv6, unreach6, false},
		{"v6 reply of another run", protoICMPv6, marshalReply(protoICMPv6, other), false},
		{"v6 reply without token", protoICMPv6, marshalReply(protoICMPv6, plain), false},
		{"v6 truncated", protoICMPv6, marshalReply(protoICMPv6, echo)[:20], false},
		{"v6 header only", protoICMPv6, marshalReply(protoICMPv6, echo)[:4], false},
		{"empty", protoICMPv6, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, ok := tc.proto.matchReply(tc.b, runID)
			if ok != tc.wantOK || (ok && seq != 70003) {
				t.Errorf("got seq %d, %v; want 70003, %v", seq, ok, tc.wantOK)
			}
		})
	}
}

func TestZoneIndex(t *testing.T) {
	for _, tc := range []struct {
		zone    string
		want    uint32
		wantErr bool
	}{
		{"", 0, false},
		{"2", 2, false},
		{"4294967295", 1<<32 - 1, false},
		{"eth0", 0, true},
		{"4294967296", 0, true},
		{"-1", 0, true},
	} {
		got, err := zoneIndex(tc.zone)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("zoneIndex(%q) = %d, %v; want %d, error %v", tc.zone, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestRunIPv6 runs against a fake ICMPv6 peer, which refuses anything but
// an ICMPv6 echo request.
func TestRunIPv6(t *testing.T) {
	conn := newEchoConn()
	conn.proto = protoICMPv6
	conn.drop = func(seq int) bool { return seq == 4 }
	cfg := testConfig(10)
	cfg.Target = netip.MustParseAddr("fd00::2")
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Target != cfg.Target || len(res.Probes) != 10 {
		t.Fatalf("got target %v and %d probes, want %v and 10", res.Target, len(res.Probes), cfg.Target)
	}
	for _, p := range res.Probes {
		if want := p.Seq != 4; p.Answered() != want {
			t.Errorf("probe %d: answered %v, want %v", p.Seq, p.Answered(), want)
		}
	}
}

// familyConn is an echoConn that says which ICMP it was made for, like
// Listen's and ListenIPv6's sockets.
type familyConn struct {
	*echoConn
	family icmpProto
}

func (c familyConn) codec(cfg Config) (codec, error) { return newICMPCodec(c.family, cfg) }

func TestRunRefusesSocketOfOtherFamily(t *testing.T) {
	for _, tc := range []struct {
		family icmpProto
		target string
	}{
		{protoICMP, "fd00::2"},
		{protoICMPv6, "10.244.2.2"},
		{protoICMPv6, "::ffff:10.244.2.2"},
	} {
		conn := familyConn{echoConn: newEchoConn(), family: tc.family}
		cfg := testConfig(3)
		cfg.Target = netip.MustParseAddr(tc.target)
		_, err := Run(context.Background(), conn, cfg)
		if err == nil || !strings.Contains(err.Error(), "ListenFor") {
			t.Errorf("%v socket, target %s: got %v, want an error naming ListenFor", tc.family, tc.target, err)
		}
		if conn.sent != 0 {
			t.Errorf("%v socket, target %s: %d requests sent, want none", tc.family, tc.target, conn.sent)
		}
	}
}

func TestIPv4Payload(t *testing.T) {
	icmp := []byte{0, 0, 0xde, 0xad, 0, 1, 0, 2}
	hdr := func(ihl byte) []byte { b := make([]byte, int(ihl)*4); b[0] = 0x40 | ihl; return b }
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"plain header", append(hdr(5), icmp...), icmp},
		{"with options", append(hdr(6), icmp...), icmp},
		{"no header", icmp, icmp},
		{"header only", hdr(5), []byte{}},
		{"ihl beyond data", append([]byte{0x46}, make([]byte, 19)...), append([]byte{0x46}, make([]byte, 19)...)},
		{"ihl too small", append([]byte{0x44}, make([]byte, 19)...), append([]byte{0x44}, make([]byte, 19)...)},
	} {
		if got := ipv4Payload(tc.in); string(got) != string(tc.want) {
			t.Errorf("%s: got % x, want % x", tc.name, got, tc.want)
		}
	}
}

// TestICMPMessage: raw IPv6 reads carry no IP header, so nothing is
// stripped, even from bytes that would pass for an IPv4 header.
func TestICMPMessage(t *testing.T) {
	v4like := append([]byte{0x45}, make([]byte, 27)...)
	if got := icmpMessage(protoICMPv6, v4like); len(got) != len(v4like) {
		t.Errorf("ICMPv6: got %d bytes, want all %d", len(got), len(v4like))
	}
	if got := icmpMessage(protoICMP, v4like); len(got) != 8 {
		t.Errorf("ICMPv4: got %d bytes, want the 8 after the header", len(got))
	}
}

// TestEchoReplyFilter runs the raw ICMP socket's filter in x/net/bpf's VM:
// it passes echo replies carrying a token, behind an IPv4 header of any
// length on ICMPv4, and drops requests, other pingers' replies and
// truncated ones.
func TestEchoReplyFilter(t *testing.T) {
	for _, p := range []icmpProto{protoICMP, protoICMPv6} {
		prog, err := echoReplyFilter(p)
		if err != nil {
			t.Fatal(err)
		}
		vm := filterVM(t, prog)
		requestType, replyType := p.echoBytes()
		echo := func(typ byte, data []byte, ipHeader int) []byte {
			b, err := p.echoRequest(7, 3, data)
			if err != nil {
				t.Fatal(err)
			}
			b[0] = typ
			if p == protoICMPv6 {
				return b
			}
			h := make([]byte, ipHeader)
			h[0] = 0x40 | byte(ipHeader/4)
			return append(h, b...)
		}
		token := Payload{RunID: 5, Seq: 3}.Marshal(56)
		foreign := bytes.Repeat([]byte{0xaa}, 56) // ping's data: a timeval and a pattern
		for _, tc := range []struct {
			name string
			msg  []byte
			pass bool
		}{
			{"cnitrace reply", echo(replyType, token, 20), true},
			{"cnitrace reply, IP options", echo(replyType, token, 24), true},
			{"cnitrace request", echo(requestType, token, 20), false},
			{"foreign reply", echo(replyType, foreign, 20), false},
			{"short", echo(replyType, token, 20)[:10], false},
		} {
			if p == protoICMPv6 && tc.name == "cnitrace reply, IP options" {
				continue // no IP header on a raw ICMPv6 socket
			}
			n, err := vm.Run(tc.msg)
			if err != nil {
				t.Fatalf("%v %s: %v", p, tc.name, err)
			}
			if (n > 0) != tc.pass {
				t.Errorf("%v %s: filter returned %d, want pass %v", p, tc.name, n, tc.pass)
			}
		}
	}
}
