package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/icmp"
)

// The requests a run rewrites in place (codec.request) are checked byte
// for byte against the encoders they replaced, each of which allocated
// per probe: x/net/icmp's Message.Marshal for ICMP and ICMPv6 echo, and,
// copied here as they were, the UDP payload, TCP SYN and DNS query
// builders. Every codec builds its requests in turn, in one buffer, so a
// byte left over from an earlier probe shows.

// requestSeqs are the sequences each codec builds, in this order: both
// sides of the 16-bit echo and DNS id wrap, of the 15 bits a TCP ISN
// carries, and of 32 bits.
var requestSeqs = []uint32{0, 1, 2, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x10005, 1 << 31, 0xffffffff, 3}

// requestSizes are the sizes of ICMP and UDP runs: the smallest, odd ones
// (the checksum's last byte alone), the default, an MTU's and the largest.
var requestSizes = []int{TokenLen, TokenLen + 1, 56, 57, 1000, 1472, 65507 - 8}

// sentAtOf is the send time request stamps probe seq with.
func sentAtOf(seq uint32) time.Time {
	return time.Unix(1795579585, 123456789).Add(time.Duration(seq) * time.Millisecond)
}

// oldPayload is Payload.Marshal as it was.
func oldPayload(p Payload, size int) []byte {
	if size < TokenLen {
		size = TokenLen
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b[0:4], Magic)
	binary.BigEndian.PutUint64(b[4:12], p.RunID)
	binary.BigEndian.PutUint32(b[12:16], p.Seq)
	binary.BigEndian.PutUint64(b[16:24], uint64(p.SentAt.UnixNano()))
	for i := TokenLen; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

// oldEcho is the echo request as icmpProto.echoRequest built it, with
// x/net/icmp.
func oldEcho(t *testing.T, p icmpProto, id uint16, seq uint32, data []byte) []byte {
	t.Helper()
	typ, _ := p.echoTypes()
	b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(id), Seq: int(seq & 0xffff), Data: data}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oldSYN is tcpCodec.request as it was.
func oldSYN(c *tcpCodec, seq uint32) []byte {
	b := make([]byte, tcpHeaderLen)
	binary.BigEndian.PutUint16(b[0:], c.sport(seq))
	binary.BigEndian.PutUint16(b[2:], c.target.Port())
	binary.BigEndian.PutUint32(b[4:], tcpISN(seq))
	b[12], b[13] = tcpHeaderLen/4<<4, tcpSYN
	binary.BigEndian.PutUint16(b[14:], tcpWindow)
	b[20], b[21] = tcpOptionKind, tcpOptionLen
	binary.BigEndian.PutUint32(b[tcpTokenOff:], Magic)
	binary.BigEndian.PutUint64(b[26:], c.runID)
	binary.BigEndian.PutUint32(b[34:], seq)
	b[38], b[39] = 2, 4
	binary.BigEndian.PutUint16(b[40:], c.mss)
	b[42], b[43] = 1, 1
	if c.v6 {
		return b
	}
	src := c.src
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	binary.BigEndian.PutUint16(b[16:], tcpChecksum(src, c.target.Addr(), b))
	return b
}

// oldQuery is dnsCodec.request as it was.
func oldQuery(runID uint64, suffix []byte, seq uint32) []byte {
	b := make([]byte, 12, 12+1+dnsLabelLen+len(suffix)+4)
	binary.BigEndian.PutUint16(b[0:], uint16(seq))
	b[2] = 0x01 // RD
	binary.BigEndian.PutUint16(b[4:], 1)
	b = append(b, dnsLabelLen)
	b = append(b, "cnt1"...)
	b = fmt.Appendf(b, "%016x%08x", runID, seq)
	b = append(b, suffix...)
	return append(b, 0, 1, 0, 1)
}

// sameRequests builds every one of requestSeqs with cd and compares it
// with what old built.
func sameRequests(t *testing.T, name string, cd codec, old func(seq uint32) []byte) {
	t.Helper()
	for _, seq := range requestSeqs {
		got, err := cd.request(seq, sentAtOf(seq))
		if err != nil {
			t.Fatalf("%s: request %d: %v", name, seq, err)
		}
		if want := old(seq); !bytes.Equal(got, want) {
			t.Errorf("%s: request %d (%d bytes) differs from the old encoder's (%d bytes)\n got % x\nwant % x",
				name, seq, len(got), len(want), got[:min(len(got), 64)], want[:min(len(want), 64)])
		}
	}
}

func TestEchoRequestsAsBefore(t *testing.T) {
	for _, p := range []icmpProto{protoICMP, protoICMPv6} {
		target := netip.MustParseAddr("10.244.2.2")
		if p == protoICMPv6 {
			target = netip.MustParseAddr("fd00:10:244:2::2")
		}
		for _, size := range requestSizes {
			cfg := Config{Target: target, Size: size, ID: 0xbeef, RunID: 0x1122334455667788}
			cd, err := newICMPCodec(p, cfg)
			if err != nil {
				t.Fatal(err)
			}
			sameRequests(t, fmt.Sprintf("%v size %d", p, size), cd, func(seq uint32) []byte {
				return oldEcho(t, p, cfg.ID, seq, oldPayload(Payload{RunID: cfg.RunID, Seq: seq, SentAt: sentAtOf(seq)}, size))
			})
		}
	}
}

func TestUDPRequestsAsBefore(t *testing.T) {
	for _, size := range requestSizes {
		cfg := udpConfig(7)
		cfg.Size = size
		sameRequests(t, fmt.Sprintf("UDP size %d", size), newUDPCodec(cfg, 40000), func(seq uint32) []byte {
			return oldPayload(Payload{RunID: cfg.RunID, Seq: seq, SentAt: sentAtOf(seq)}, size)
		})
	}
}

func TestTCPRequestsAsBefore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target netip.Addr
		src    netip.Addr // IPv4: the checksum's source; invalid: none found yet
	}{
		{"IPv4", tcpTarget4, tcpSrc4},
		{"IPv4 without a source", tcpTarget4, netip.Addr{}},
		{"IPv6", tcpTarget6, netip.Addr{}},
	} {
		c := testTCPCodec(tc.target)
		c.src = tc.src
		sameRequests(t, "TCP "+tc.name, c, func(seq uint32) []byte { return oldSYN(c, seq) })
	}
}

func TestDNSRequestsAsBefore(t *testing.T) {
	for _, suffix := range []string{DefaultDNSSuffix, "local.", "svc.cluster-2.example_zone.internal."} {
		cfg := udpConfig(53)
		cfg.DNSSuffix = suffix
		wire := dnsSuffixWire(suffix)
		sameRequests(t, "DNS under "+suffix, newUDPCodec(cfg, 40000), func(seq uint32) []byte { return oldQuery(cfg.RunID, wire, seq) })
	}
}

// TestCodecsAllocateNothing: building a request and matching its answer
// (a reply, or an ICMP error quoting it) allocate nothing, for every
// protocol: a run's probes in steady state cost the heap nothing.
func TestCodecsAllocateNothing(t *testing.T) {
	icmp4, _ := newICMPCodec(protoICMP, testConfig(1))
	cfg6 := testConfig(1)
	cfg6.Target = netip.MustParseAddr("fd00::2")
	icmp6, _ := newICMPCodec(protoICMPv6, cfg6)
	tcp4, tcp6 := testTCPCodec(tcpTarget4), testTCPCodec(tcpTarget6)
	for _, tc := range []struct {
		name   string
		cd     codec
		answer func(req []byte) ([]byte, *icmpErr) // the datagram answering req, or the ICMP error quoting it
	}{
		{"ICMP", icmp4, func(req []byte) ([]byte, *icmpErr) { return withIPv4Header(echoReplyTo(req, icmpEchoReply)), nil }},
		{"ICMPv6", icmp6, func(req []byte) ([]byte, *icmpErr) { return echoReplyTo(req, icmpv6EchoReply), nil }},
		{"TCP SYN-ACK", tcp4, func(req []byte) ([]byte, *icmpErr) { return tcpAnswer(tcp4, req, tcpSYN|tcpACK), nil }},
		{"TCP (IPv6) RST", tcp6, func(req []byte) ([]byte, *icmpErr) { return tcpAnswer(tcp6, req, tcpRST|tcpACK), nil }},
		{"TCP unreachable", tcp4, func(req []byte) ([]byte, *icmpErr) {
			return nil, &icmpErr{typ: 3, code: 13, from: tcpSrc4, data: bytes.Clone(req)}
		}},
		{"UDP echo", newUDPCodec(udpConfig(7), 40000), func(req []byte) ([]byte, *icmpErr) { return bytes.Clone(req), nil }},
		{"UDP unreachable", newUDPCodec(udpConfig(7), 40000), func(req []byte) ([]byte, *icmpErr) {
			return nil, &icmpErr{typ: 3, code: 3, from: udpTarget, data: bytes.Clone(req)}
		}},
		{"DNS", newUDPCodec(udpConfig(53), 40000), func(req []byte) ([]byte, *icmpErr) { return dnsResponse(req, 3, true), nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := tc.cd.request(5, sentAtOf(5))
			if err != nil {
				t.Fatal(err)
			}
			msg, e := tc.answer(req)
			match := func() {
				var r reply
				var ok bool
				if e != nil {
					r, ok = tc.cd.matchErr(*e)
				} else {
					r, ok = tc.cd.match(msg, tc.cd.dst().Addr())
				}
				if !ok || r.seq != 5 {
					t.Fatalf("the answer to probe 5: got %+v, %v; want it matched", r, ok)
				}
			}
			seq := uint32(5)
			build := func() {
				seq++
				if _, err := tc.cd.request(seq, sentAtOf(seq)); err != nil {
					t.Fatal(err)
				}
			}
			if n := testing.AllocsPerRun(100, build); n != 0 {
				t.Errorf("building a request allocates %v times, want 0", n)
			}
			if n := testing.AllocsPerRun(100, match); n != 0 {
				t.Errorf("matching an answer allocates %v times, want 0", n)
			}
		})
	}
}

// echoReplyTo is the echo reply of type typ a peer sends to echo request
// req: the same identifier, sequence and data.
func echoReplyTo(req []byte, typ byte) []byte {
	r := bytes.Clone(req)
	r[0] = typ
	return r
}
