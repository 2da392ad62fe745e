package probe

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var udpTarget = netip.MustParseAddr("10.96.0.10")

func udpConfig(port int) Config {
	return Config{Target: udpTarget, Proto: UDP, Port: port, Count: 1, Timeout: time.Second, Size: 56,
		RunID: 0x0123456789abcdef, DNSSuffix: DefaultDNSSuffix}
}

// TestDNSRequestLayout checks probe 0x10002's query byte by byte: the
// magic at UDP payload offset 13, the query id the sequence's low 16 bits.
func TestDNSRequestLayout(t *testing.T) {
	c := newUDPCodec(udpConfig(53), 40000)
	if c.what() != "DNS query" || c.dst() != netip.AddrPortFrom(udpTarget, 53) {
		t.Fatalf("port 53: got a %s to %v, want a DNS query to %v:53", c.what(), c.dst(), udpTarget)
	}
	b, err := c.request(0x10002, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// DNS: 0002 0100 0001 0000 0000 0000 | 1c "cnt10123456789abcdef00010002" 07 "cluster" 05 "local" 00 | 0001 0001
	want := []byte{0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 28}
	want = append(want, "cnt10123456789abcdef00010002"...)
	want = append(want, 7)
	want = append(want, "cluster"...)
	want = append(want, 5)
	want = append(want, "local"...)
	want = append(want, 0, 0, 1, 0, 1)
	if !bytes.Equal(b, want) {
		t.Errorf("query\n got %x\nwant %x", b, want)
	}
	if m := binary.BigEndian.Uint32(b[dnsTokenOff:]); m != Magic {
		t.Errorf("magic at UDP payload offset %d: %#x, want %#x", dnsTokenOff, m, Magic)
	}
}

// dnsResponse makes a server's answer to query q: QR and RA set, the
// RCODE, the question echoed (upper case when upper), an empty answer.
func dnsResponse(q []byte, rcode byte, upper bool) []byte {
	r := append([]byte(nil), q...)
	r[2] |= 0x80
	r[3] = 0x80 | rcode
	if upper {
		copy(r[13:], strings.ToUpper(string(r[13:13+dnsLabelLen])))
	}
	return r
}

func TestDNSMatch(t *testing.T) {
	c := newUDPCodec(udpConfig(53), 40000)
	q, _ := c.request(7, time.Time{})
	for _, tc := range []struct {
		name string
		msg  []byte
		ok   bool
		code uint8
	}{
		{"NXDOMAIN", dnsResponse(q, 3, false), true, 3},
		{"REFUSED, upper case", dnsResponse(q, 5, true), true, 5},
		{"the query itself", q, false, 0},
		{"other run", func() []byte { r := dnsResponse(q, 0, false); r[20] = 'f'; return r }(), false, 0},
		{"no question", func() []byte { r := dnsResponse(q, 0, false); r[5] = 0; return r }(), false, 0},
		{"bad hex", func() []byte { r := dnsResponse(q, 0, false); r[30] = 'g'; return r }(), false, 0},
		{"other label length", func() []byte { r := dnsResponse(q, 0, false); r[12] = 27; return r }(), false, 0},
		{"truncated label", dnsResponse(q, 0, false)[:40], false, 0},
		{"header only", q[:12], false, 0},
	} {
		r, ok := c.match(tc.msg, udpTarget)
		if ok != tc.ok {
			t.Errorf("%s: matched %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if ok && (r.kind != DNSReply || r.seq != 7 || r.code != tc.code || r.from != udpTarget || r.low) {
			t.Errorf("%s: got %+v, want a DNSReply to 7, code %d, from %v", tc.name, r, tc.code, udpTarget)
		}
	}
	// A port unreachable quotes the query (QR clear).
	for _, tc := range []struct {
		name string
		e    icmpErr
		ok   bool
	}{
		{"port unreachable", icmpErr{typ: 3, code: 3, from: udpTarget, data: q}, true},
		{"a response quoted", icmpErr{typ: 3, code: 3, data: dnsResponse(q, 0, false)}, false},
		{"8 bytes quoted", icmpErr{typ: 3, code: 3, data: q[:8]}, false},
		{"redirect", icmpErr{typ: 5, data: q}, false},
	} {
		r, ok := c.matchErr(tc.e)
		if ok != tc.ok || (ok && (r.kind != Unreachable || r.seq != 7 || r.code != 3 || r.from != udpTarget)) {
			t.Errorf("%s: got %+v, %v; want matched %v", tc.name, r, ok, tc.ok)
		}
	}
}

func TestUDPEchoMatch(t *testing.T) {
	c := newUDPCodec(udpConfig(7), 40000)
	if c.what() != "UDP probe" {
		t.Fatalf("port 7: got a %s, want a UDP probe", c.what())
	}
	b, _ := c.request(42, time.Unix(1, 0))
	if p, err := ParsePayload(b); err != nil || len(b) != 56 || p.Seq != 42 || p.RunID != 0x0123456789abcdef {
		t.Fatalf("request: %x (%+v, %v), want the 56-byte token of probe 42", b, p, err)
	}
	if r, ok := c.match(b, udpTarget); !ok || r.kind != UDPReply || r.seq != 42 {
		t.Errorf("echo: got %+v, %v", r, ok)
	}
	other := append([]byte(nil), b...)
	other[11]++
	if _, ok := c.match(other, udpTarget); ok {
		t.Error("another run's echo matched")
	}
	if _, ok := c.match(b[:15], udpTarget); ok {
		t.Error("15 bytes matched")
	}
	if r, ok := c.matchErr(icmpErr{v6: true, typ: 1, code: 4, data: b[:16]}); !ok || r.kind != Unreachable || r.code != 4 || r.seq != 42 {
		t.Errorf("ICMPv6 port unreachable quoting 16 bytes: got %+v, %v", r, ok)
	}
	if _, ok := c.matchErr(icmpErr{typ: 11, data: b}); ok {
		t.Error("time exceeded matched")
	}
}

func TestCheckDNSSuffix(t *testing.T) {
	for _, s := range []string{"cluster.local.", "cluster.local", "svc.cluster.local.", "k8s_1.example-2.org"} {
		if err := checkDNSSuffix(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{".", "", "a..b", "a b.local", strings.Repeat("a", 64) + ".local", strings.Repeat("abcdefgh.", 26)} {
		if err := checkDNSSuffix(s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
	if got := dnsSuffixWire("a.bc."); !bytes.Equal(got, []byte{1, 'a', 2, 'b', 'c', 0}) {
		t.Errorf("dnsSuffixWire: %x", got)
	}
}

func TestConfigValidateProto(t *testing.T) {
	ok := testConfig(1)
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		valid bool
	}{
		{"icmp", func(*Config) {}, true},
		{"icmp with a port", func(c *Config) { c.Port = 80 }, false},
		{"tcp", func(c *Config) { c.Proto, c.Port = TCP, 80 }, true},
		{"tcp without a port", func(c *Config) { c.Proto = TCP }, false},
		{"udp port 65535", func(c *Config) { c.Proto, c.Port = UDP, 65535 }, true},
		{"udp port 65536", func(c *Config) { c.Proto, c.Port = UDP, 65536 }, false},
		{"udp negative port", func(c *Config) { c.Proto, c.Port = UDP, -1 }, false},
		{"unknown proto", func(c *Config) { c.Proto, c.Port = 9, 80 }, false},
		{"dns suffix", func(c *Config) { c.Proto, c.Port, c.DNSSuffix = UDP, 53, "cluster.example." }, true},
		{"bad dns suffix", func(c *Config) { c.Proto, c.Port, c.DNSSuffix = UDP, 53, "a..b" }, false},
	} {
		c := ok
		tc.mod(&c)
		if err := c.Validate(); (err == nil) != tc.valid {
			t.Errorf("%s: Validate says %v, want valid %v", tc.name, err, tc.valid)
		}
	}
}

func TestProtoAndReplyNames(t *testing.T) {
	for _, p := range []Proto{ICMP, TCP, UDP} {
		if got, err := ParseProto(strings.ToUpper(p.String())); err != nil || got != p {
			t.Errorf("ParseProto(%q) = %v, %v", strings.ToUpper(p.String()), got, err)
		}
	}
	if _, err := ParseProto("sctp"); err == nil {
		t.Error("ParseProto(sctp): no error")
	}
	seen := map[string]bool{}
	for r := NoReply; r <= Unreachable; r++ {
		if s := r.String(); seen[s] || strings.HasPrefix(s, "reply(") {
			t.Errorf("Reply(%d) = %q: want a name of its own", r, s)
		} else {
			seen[s] = true
		}
	}
}

// FuzzParseDNSToken: no input panics the DNS and UDP parsers.
func FuzzParseDNSToken(f *testing.F) {
	c := newUDPCodec(udpConfig(53), 40000)
	q, _ := c.request(1, time.Time{})
	f.Add(q)
	f.Add(dnsResponse(q, 3, true))
	f.Add([]byte{0, 0, 0x80})
	e := newUDPCodec(udpConfig(7), 40000)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range []codec{c, e} {
			c.match(b, udpTarget)
			c.matchErr(icmpErr{typ: 3, data: b})
		}
		if tok, ok := parseDNSToken(b, true); ok && len(b) < dnsTokenOff+dnsLabelLen {
			t.Errorf("parsed %+v from %d bytes", tok, len(b))
		}
	})
}
