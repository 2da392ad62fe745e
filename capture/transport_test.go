package capture

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// TestTransportFilterAndDecode runs every TCP and UDP case, in every
// encapsulation over IPv4 and IPv6, through the filter of both link types
// (with an extra VXLAN port, as a session has) and, when it passes, the
// decoder, which must find what the case says.
func TestTransportFilterAndDecode(t *testing.T) {
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		vm := filterVM(t, link, []uint16{9472})
		d := NewDecoderFor(link, []uint16{9472})
		for _, f := range transportFrames() {
			t.Run(link.String()+"/"+f.name, func(t *testing.T) {
				frame := onLink(t, link, f.stack())
				n, err := vm.Run(frame)
				if err != nil {
					t.Fatalf("run filter: %v", err)
				}
				if got := n > 0; got != f.tc.accept {
					t.Fatalf("filter: got accept=%v, want %v; frame % x", got, f.tc.accept, frame)
				}
				o, err := d.Decode(frame, Meta{Point: "p0"})
				if !f.tc.accept {
					// An ICMP message without a token decodes, as before TCP
					// and UDP probes, and is the report's to ignore.
					if err == nil && (o.Proto != ProtoICMP || o.Token != nil) {
						t.Errorf("decoder accepts what the filter rejects: %+v", o)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				checkTransport(t, o, f.want())
				if o.Link != link {
					t.Errorf("got link %s, want %s", o.Link, link)
				}
			})
		}
	}
}

// checkTransport compares what Decode found with what it should have.
func checkTransport(t *testing.T, o, want Observation) {
	t.Helper()
	if o.Tunnel != want.Tunnel || o.OuterSrc != want.OuterSrc || o.OuterDst != want.OuterDst || o.Src != want.Src || o.Dst != want.Dst {
		t.Errorf("got %q %v > %v [%v > %v], want %q %v > %v [%v > %v]",
			o.Tunnel, o.OuterSrc, o.OuterDst, o.Src, o.Dst, want.Tunnel, want.OuterSrc, want.OuterDst, want.Src, want.Dst)
	}
	if o.Proto != want.Proto || o.ICMPType != want.ICMPType || o.ICMPCode != want.ICMPCode || o.ICMPID != 0 || o.ICMPSeq != 0 {
		t.Errorf("got %s type %d code %d id %d seq %d, want %s type %d code %d", o.Proto, o.ICMPType, o.ICMPCode, o.ICMPID, o.ICMPSeq, want.Proto, want.ICMPType, want.ICMPCode)
	}
	if o.SrcPort != want.SrcPort || o.DstPort != want.DstPort || o.TCPFlags != want.TCPFlags || o.TCPSeq != want.TCPSeq || o.TCPAck != want.TCPAck {
		t.Errorf("got ports %d > %d flags %#02x seq %#x ack %#x, want %d > %d %#02x %#x %#x",
			o.SrcPort, o.DstPort, o.TCPFlags, o.TCPSeq, o.TCPAck, want.SrcPort, want.DstPort, want.TCPFlags, want.TCPSeq, want.TCPAck)
	}
	if o.DNS != want.DNS || o.DNSResponse != want.DNSResponse || !bytes.Equal(o.Token, want.Token) {
		t.Errorf("got dns=%v response=%v token % x, want %v %v % x", o.DNS, o.DNSResponse, o.Token, want.DNS, want.DNSResponse, want.Token)
	}
	if o.Payload != nil {
		t.Errorf("got payload % x: Payload is ICMP echo data only", o.Payload)
	}
}

// TestTransportNotEchoes: the report, as it stands, places an observation
// only when probe.ParsePayload accepts its Payload and it is an echo
// request or reply. No TCP or UDP observation may look like one, so the
// report ignores them until it is taught to read Token.
func TestTransportNotEchoes(t *testing.T) {
	d := NewDecoderFor(LinkEthernet, nil)
	for _, f := range transportFrames() {
		if !f.tc.accept {
			continue
		}
		o, err := d.Decode(onLink(t, LinkEthernet, f.stack()), Meta{Point: "p0"})
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if _, err := probe.ParsePayload(o.Payload); err == nil || o.IsRequest() || o.IsReply() {
			t.Errorf("%s: looks like an ICMP echo (request %v, reply %v, payload % x)", f.name, o.IsRequest(), o.IsReply(), o.Payload)
		}
	}
}

// TestTransportTokensParse: what Decode puts in Token is what probe reads
// a token from, for every protocol, and a TCP reply's TCPAck is what probe
// reads an answer's sequence from: one function each for the report.
func TestTransportTokensParse(t *testing.T) {
	d := NewDecoderFor(LinkEthernet, nil)
	frames := append(transportFrames(), transportFrame{name: "icmp echo", stack: request4, tc: transportCase{accept: true}})
	for _, f := range frames {
		if !f.tc.accept {
			continue
		}
		o, err := d.Decode(onLink(t, LinkEthernet, f.stack()), Meta{Point: "p0"})
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if o.Proto == ProtoUnreachable && o.TCPSeq != 0 {
			// A quoted SYN: its ISN gives the low 15 bits of the sequence,
			// as the acknowledgement of a reply does (ISN+1).
			low, ok := probe.TCPAnswerSeq(o.TCPSeq + 1)
			if want := (o.TCPSeq & 0xffff) >> 1; !ok || low != want || low != tokSeq {
				t.Errorf("%s: quoted sequence %#x gives %d, %v by probe and %d by hand, want %d", f.name, o.TCPSeq, low, ok, want, tokSeq)
			}
		}
		if o.Token == nil {
			if o.Proto == ProtoUnreachable && o.TCPSeq != 0 {
				continue
			}
			if low, ok := probe.TCPAnswerSeq(o.TCPAck); o.Proto != ProtoTCP || !ok || low != tokSeq {
				t.Errorf("%s: no token, and ack %#x gives sequence %d, %v", f.name, o.TCPAck, low, ok)
			}
			continue
		}
		want := probe.Token{RunID: tokRun, Seq: tokSeq}
		if o.Proto == ProtoICMP {
			want = probe.Token{RunID: 0x0405060708090a0b, Seq: 0x0c0d0e0f} // probeData's
		}
		if tok, err := probe.ParseToken(o.Token); err != nil || tok != want {
			t.Errorf("%s: probe.ParseToken(% x) = %+v, %v; want %+v", f.name, o.Token, tok, err, want)
		}
	}
}

// TestTransportTruncated cuts every accepted TCP and UDP frame at every
// length: the decoder errs on each prefix shorter than the IP packet, and
// the filter passes a prefix exactly once it holds the last byte the
// filter reads (the magic's, a reply's flags, or a quoted SYN's sequence).
func TestTransportTruncated(t *testing.T) {
	for _, link := range []LinkType{LinkEthernet, LinkRawIP} {
		vm, d := filterVM(t, link, nil), NewDecoderFor(link, nil)
		for _, f := range transportFrames() {
			if !f.tc.accept {
				continue
			}
			frame := onLink(t, link, f.stack())
			whole := len(onLink(t, LinkRawIP, f.stack())) // without Ethernet's padding to 60 bytes
			if link == LinkEthernet {
				whole += etherHeaderLen
			}
			var end int
			switch w := f.tc.want; {
			case w.Proto == ProtoUnreachable && w.TCPSeq != 0: // the quoted sequence only
				end = bytes.Index(frame, binary.BigEndian.AppendUint32(nil, tokISN)) + 4
			case w.Token != nil: // the magic, in a DNS label in any case
				end = indexMagicFold(frame) + 4
			default: // the acknowledgement, then the flags
				end = bytes.Index(frame, binary.BigEndian.AppendUint32(nil, tokISN+1)) + 4 + 2
			}
			for n := range len(frame) {
				if o, err := d.Decode(frame[:n], Meta{}); err == nil && n < whole {
					t.Errorf("%s/%s: %d of %d bytes: got %+v, want an error", link, f.name, n, len(frame), o)
				}
				if got, _ := vm.Run(frame[:n]); (got > 0) != (n >= end) {
					t.Errorf("%s/%s: %d of %d bytes (read up to %d): filter accept=%v", link, f.name, n, len(frame), end, got > 0)
				}
			}
		}
	}
}

// indexMagicFold is where testMagic first appears in b with its letters in
// either case, or -1.
func indexMagicFold(b []byte) int {
	want := binary.BigEndian.AppendUint32(nil, testMagic)
	for i := 0; i+len(want) <= len(b); i++ {
		if asciiFoldEqual(b[i:i+len(want)], want) {
			return i
		}
	}
	return -1
}

// asciiFoldEqual reports whether a and b are equal but for the case of
// ASCII letters (bytes.EqualFold also folds UTF-8).
func asciiFoldEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	lower := func(c byte) byte {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// TestDNSMagicAnyCase sets each byte of a DNS answer's "cnt1" to each of
// the 256 values: the filter and the decoder take it exactly when it is
// the magic's byte in either case (a letter's two cases, the digit as it
// is), so matching in any case lets in nothing else.
func TestDNSMagicAnyCase(t *testing.T) {
	vm, d := filterVM(t, LinkRawIP, nil), NewDecoderFor(LinkRawIP, nil)
	frame := onLink(t, LinkRawIP, udpPacket(overlB, overlA, 53, 40003, dnsAnswer(dnsProbeName)))
	at := 20 + udpHeaderLen + offDNSMagic
	magic := append([]byte(nil), frame[at:at+4]...)
	for i := range magic {
		for v := range 256 {
			f := append([]byte(nil), frame...)
			f[at+i] = byte(v)
			want := asciiFoldEqual(f[at:at+4], magic)
			if n, err := vm.Run(f); err != nil || (n > 0) != want {
				t.Errorf("%q: filter accept=%v (%v), want %v", f[at:at+4], n > 0, err, want)
			}
			o, err := d.Decode(f, Meta{})
			if (err == nil) != want || (want && !bytes.Equal(o.Token, tokenBytes)) {
				t.Errorf("%q: decoded token % x, %v; want it %v", f[at:at+4], o.Token, err, want)
			}
		}
	}
	if got := caseMask(0x41427a31); got != 0x20202000 { // "ABz1"
		t.Errorf("caseMask(ABz1) = %#08x, want 0x20202000", got)
	}
	if got := caseMask(0x405b607b); got != 0 { // "@[`{": next to the letters, none of them
		t.Errorf("caseMask(@[`{) = %#08x, want 0", got)
	}
}

// TestDecodeTransportErrors: what the filter lets through but the decoder
// still refuses, and TCP and UDP cut or malformed.
func TestDecodeTransportErrors(t *testing.T) {
	badLabel := dnsQuery("cnt1" + strings.Repeat("x", 24) + ".probe")
	badMixedLabel := dnsQuery("CnT1" + strings.Repeat("aG", 12) + ".probe") // hex digits, then a G
	shortLabel := dnsQuery("cnt1abc.probe")
	tests := []struct {
		name    string
		s       stack
		corrupt func(frame []byte) // at the raw-IP frame, IPv4 header of 20 bytes
		filter  bool               // the filter's verdict
		wantErr string
	}{
		{"dns label not hex", udpPacket(overlA, overlB, 40003, 53, badLabel), nil, true, "invalid byte"},
		{"dns label too short", udpPacket(overlA, overlB, 40003, 53, shortLabel), nil, true, "first label of 7 bytes"},
		{"mixed-case dns label not hex", udpPacket(overlB, overlA, 53, 40003, badMixedLabel), nil, true, "invalid byte: U+0047 'G'"},
		{"udp to a tunnel port", udpPacket(overlA, overlB, 40002, PortVXLANLinux, udpProbeData()), nil, false, "decode inner Ethernet"},
		{"udp length past the packet", udpPacket(overlA, overlB, 40002, 7, udpProbeData()), func(b []byte) { b[20+5] += 4 }, true, "truncated"},
		{"tcp header of 16 bytes", tcpPacket(overlA, overlB, tcpSYN(), nil), func(b []byte) { b[20+12] = 0x40 }, false, "header length 16"},
		{"tcp header past the segment", tcpPacket(overlA, overlB, tcpSYN(), nil), func(b []byte) { b[20+12] = 0xf0 }, true, "header length 60"},
		{"tcp syn-ack without ack", tcpPacket(overlB, overlA, tcpReply(true, false, tokISN+1), nil), func(b []byte) { b[20+13] = TCPFlagSYN }, false, "without the token option"},
		{"tcp fin-ack", tcpPacket(overlB, overlA, tcpReply(false, false, tokISN+1), nil), func(b []byte) { b[20+13] = TCPFlagFIN | TCPFlagACK }, false, "without SYN or RST"},
		{"tcp no flags", tcpPacket(overlA, overlB, tcpSYN(), nil), func(b []byte) { b[20+13] = 0 }, false, "neither a SYN"},
		{"tcp syn, other magic", tcpPacket(overlA, overlB, tcpSYN(), nil), func(b []byte) { b[20+25] ^= 1 }, false, "not the magic"},
		// ICMPv6 errors quoting what no probe sends (an ICMPv4 one decodes as
		// a plain ICMP message instead, without a token)
		{"quoted tcp, sequence no isn", unreachable(overl6A, overl6B, 3, 3, 1, 4, ordinarySYN(0x5eed1234)(overl6A, overl6B), 0), nil, false, "sequence 0x5eed1234 is no probe's ISN"},
		{"quoted tcp, 7 bytes", unreachable(overl6A, overl6B, 3, 3, 1, 4, tcpPacket(overl6A, overl6B, tcpSYN(), nil), 40+7), nil, false, "decode quoted TCP: truncated (7 bytes)"},
		{"quoted icmpv6", unreachable(overl6A, overl6B, 3, 3, 1, 4, request6(), 0), nil, false, "next header 58 is neither UDP nor TCP"},
	}
	d := NewDecoderFor(LinkRawIP, nil)
	vm := filterVM(t, LinkRawIP, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := onLink(t, LinkRawIP, tt.s)
			if tt.corrupt != nil {
				tt.corrupt(frame)
			}
			if n, _ := vm.Run(frame); (n > 0) != tt.filter {
				t.Errorf("filter: got accept=%v, want %v", n > 0, tt.filter)
			}
			_, err := d.Decode(frame, Meta{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestDecodeUDPShortToken: a UDP payload opening with the magic but too
// short for a token passes the filter and decodes without one, as an ICMP
// echo with as little data does.
func TestDecodeUDPShortToken(t *testing.T) {
	frame := onLink(t, LinkEthernet, udpPacket(overlA, overlB, 40002, 7, tokenBytes[:9]))
	if n, _ := filterVM(t, LinkEthernet, nil).Run(frame); n == 0 {
		t.Fatal("filter rejects it")
	}
	o, err := NewDecoderFor(LinkEthernet, nil).Decode(frame, Meta{})
	if err != nil || o.Proto != ProtoUDP || o.Token != nil {
		t.Errorf("got %+v, %v; want a UDP observation without a token", o, err)
	}
}

// TestProbeMagic: NewDecoderFor decodes probe's wire format.
func TestProbeMagic(t *testing.T) {
	if probeMagic != probe.Magic || testMagic != probe.Magic {
		t.Errorf("capture's probe magic %#08x, probe.Magic %#08x", probeMagic, probe.Magic)
	}
}

// TestTransportPcapNG writes every accepted TCP and UDP frame to pcapng and
// reads it back: the comment names the protocol (the label the caller
// gives aside, the writer knows no request or reply for them), and
// ReadPcapNG decodes the same observations.
func TestTransportPcapNG(t *testing.T) {
	pt := topology.Point{ID: "p0", Interface: "eth0", NetNS: "net:[4026532301]", RequestDir: topology.TX}
	var obs []Observation
	d := NewDecoderFor(LinkEthernet, nil)
	for _, f := range transportFrames() {
		if !f.tc.accept {
			continue
		}
		frame := onLink(t, LinkEthernet, f.stack())
		o, err := d.Decode(frame, Meta{Point: "p0", Dir: topology.TX, Stamp: StampCopy})
		if err != nil {
			t.Fatal(err)
		}
		o.Frame = frame
		obs = append(obs, o)
	}
	var buf bytes.Buffer
	if err := WritePcapNG(&buf, []topology.Point{pt}, obs); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPcapNG(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(obs) {
		t.Fatalf("read %d observations back, want %d", len(back), len(obs))
	}
	comments := readStream(t, buf.Bytes()).comments
	for i, o := range back {
		o.At = obs[i].At
		if !equalObservations(o, obs[i]) {
			t.Errorf("observation %d:\nread  %+v\nwrote %+v", i, o, obs[i])
		}
		if want := " proto=" + o.Proto.String() + " "; !strings.Contains(comments[i], want) {
			t.Errorf("observation %d: comment %q, want one containing %q", i, comments[i], want)
		}
	}
}

// addTransportSeeds adds every transport frame on both link types as a
// (frame, raw) seed.
func addTransportSeeds(f *testing.F) {
	for _, tf := range transportFrames() {
		f.Add(onLink(f, LinkEthernet, tf.stack()), false)
		f.Add(onLink(f, LinkRawIP, tf.stack()), true)
	}
}
