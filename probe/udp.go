package probe

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DefaultDNSSuffix is the domain of a DNS probe's question name unless
// Config.DNSSuffix says otherwise: the cluster domain of a default
// Kubernetes cluster. CoreDNS's kubernetes plugin is authoritative for it
// and answers a name of one label under it at once with NXDOMAIN (it is
// neither a svc nor a pod name), without forwarding the query anywhere;
// dnsmasq answers at once too, from its own zone (--local, --auth-zone) or
// REFUSED when it has no server to forward to. A cluster of another
// domain needs its own suffix, or CoreDNS forwards the probes out of the
// cluster (a slower, foreign answer).
const DefaultDNSSuffix = "cluster.local."

// dnsPort is the UDP port whose probes are DNS queries.
const dnsPort = 53

// dnsLabelLen is the length of the question name's first label: "cnt1",
// the run id in 16 hex digits and the sequence in 8.
const dnsLabelLen = 4 + 16 + 8

// dnsTokenOff is where the label, and so Magic, starts in the UDP payload:
// after the 12-byte header and the label's length byte.
const dnsTokenOff = 13

// checkDNSSuffix reports whether s can follow the token label in a
// question name: labels of letters, digits, '-' and '_', 1 to 63 bytes
// each, the whole name at most 255 bytes.
func checkDNSSuffix(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return errors.New("must name a domain (cluster.local.)")
	}
	if wire := 1 + dnsLabelLen + len(name) + 2; wire > 255 {
		return fmt.Errorf("the question name would be %d bytes, at most 255 may", wire)
	}
	for _, l := range strings.Split(name, ".") {
		if len(l) == 0 || len(l) > 63 {
			return fmt.Errorf("label %q: must be 1 to 63 bytes", l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("label %q: only letters, digits, '-' and '_'", l)
			}
		}
	}
	return nil
}

// newUDPCodec returns the codec of a UDP run of cfg (prepared) on a
// socket bound to source port sport: DNS queries to port 53, the token
// and padding to any other.
func newUDPCodec(cfg Config, sport uint16) codec {
	dst := netip.AddrPortFrom(cfg.Target, uint16(cfg.Port))
	if cfg.Port == dnsPort {
		c := newDNSCodec(dst, cfg.RunID, dnsSuffixWire(cfg.DNSSuffix))
		c.sport = sport
		return c
	}
	return &udpCodec{target: dst, sport: sport, runID: cfg.RunID, payload: newPayload(cfg.Size)}
}

// udpCodec speaks UDP echo: the ICMP probe's token and padding as the
// payload, the same back from the target; or an ICMP error quoting it.
type udpCodec struct {
	target  netip.AddrPort
	sport   uint16 // the socket's
	runID   uint64
	payload []byte // the run's datagram, its padding written once, its token for each probe
}

// request returns the codec's own buffer, valid until the next request.
func (c *udpCodec) request(seq uint32, sentAt time.Time) ([]byte, error) {
	Payload{RunID: c.runID, Seq: seq, SentAt: sentAt}.put(c.payload)
	return c.payload, nil
}

func (c *udpCodec) dst() netip.AddrPort { return c.target }

func (c *udpCodec) what() string { return "UDP probe" }

func (c *udpCodec) srcPort(uint32) uint16 { return c.sport }

func (c *udpCodec) match(msg []byte, from netip.Addr) (reply, bool) {
	t, ok := parseToken(msg)
	if !ok || t.RunID != c.runID {
		return reply{}, false
	}
	return reply{seq: t.Seq, kind: UDPReply, from: from.Unmap()}, true
}

func (c *udpCodec) matchErr(e icmpErr) (reply, bool) {
	t, ok := parseToken(e.data)
	if !ok || t.RunID != c.runID || !e.unreachable() {
		return reply{}, false
	}
	return reply{seq: t.Seq, kind: Unreachable, from: e.from, code: e.code}, true
}

// tokenLen is what every protocol carries of the token: magic, run id and
// sequence, the first 16 bytes of a Payload.
const tokenLen = 16

// parseToken reads the magic, run id and sequence at the start of b: an
// echoed payload, or the part of one an ICMP error quoted.
func parseToken(b []byte) (Token, bool) {
	if len(b) < tokenLen || binary.BigEndian.Uint32(b) != Magic {
		return Token{}, false
	}
	return Token{RunID: binary.BigEndian.Uint64(b[4:]), Seq: binary.BigEndian.Uint32(b[12:])}, true
}

// dnsCodec speaks DNS: a query whose question name's first label carries
// the token, answered by a response that echoes the question.
type dnsCodec struct {
	target netip.AddrPort
	sport  uint16 // the socket's
	runID  uint64
	// query is the run's query, built once (newDNSCodec): each probe
	// rewrites the id and the sequence's hex digits in the label.
	query []byte
}

// newDNSCodec returns the codec of DNS queries to target with run id
// runID and suffix, the rest of the question name in wire format, root
// label included; see request for the query.
func newDNSCodec(target netip.AddrPort, runID uint64, suffix []byte) *dnsCodec {
	b := make([]byte, 12, 12+1+dnsLabelLen+len(suffix)+4)
	b[2] = 0x01 // RD
	binary.BigEndian.PutUint16(b[4:], 1)
	b = append(b, dnsLabelLen)
	b = append(b, "cnt1"...)
	b = appendHex(b, runID, 16)
	b = appendHex(b, 0, 8) // the sequence, for each probe
	b = append(b, suffix...)
	return &dnsCodec{target: target, runID: runID, query: append(b, 0, 1, 0, 1)}
}

// dnsSeqOff is where the hex digits of the sequence start in a query.
const dnsSeqOff = dnsTokenOff + 4 + 16

// appendHex appends the n low hex digits of v, lower case, as %0*x does.
func appendHex(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, "0123456789abcdef"[v>>(4*uint(i))&0xf])
	}
	return b
}

// dnsSuffixWire returns s as the labels of a name in wire format, ending
// with the root label. s was checked (checkDNSSuffix).
func dnsSuffixWire(s string) []byte {
	var b []byte
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		b = append(append(b, byte(len(l))), l...)
	}
	return append(b, 0)
}

func (c *dnsCodec) dst() netip.AddrPort { return c.target }

func (c *dnsCodec) what() string { return "DNS query" }

func (c *dnsCodec) srcPort(uint32) uint16 { return c.sport }

// request builds probe seq's query, recursion desired, one question of
// type A, class IN:
//
//	<seq & 0xffff> 01 00 | 00 01 00 00 00 00 00 00 | 1c "cnt1" <run id, 16 hex> <seq, 8 hex> <suffix> 00 | 00 01 00 01
//
// It returns the codec's own buffer, valid until the next request.
func (c *dnsCodec) request(seq uint32, _ time.Time) ([]byte, error) {
	binary.BigEndian.PutUint16(c.query[0:], uint16(seq))
	appendHex(c.query[:dnsSeqOff], uint64(seq), 8)
	return c.query, nil
}

// match recognises a DNS response (QR set) whose first question is one of
// the run's queries; the reply's code is the response's RCODE.
func (c *dnsCodec) match(msg []byte, from netip.Addr) (reply, bool) {
	t, ok := parseDNSToken(msg, true)
	if !ok || t.RunID != c.runID {
		return reply{}, false
	}
	return reply{seq: t.Seq, kind: DNSReply, from: from.Unmap(), code: msg[3] & 0x0f}, true
}

// matchErr recognises an ICMP destination unreachable quoting one of the
// run's queries.
func (c *dnsCodec) matchErr(e icmpErr) (reply, bool) {
	t, ok := parseDNSToken(e.data, false)
	if !ok || t.RunID != c.runID || !e.unreachable() {
		return reply{}, false
	}
	return reply{seq: t.Seq, kind: Unreachable, from: e.from, code: e.code}, true
}

// parseDNSToken reads the token from the first label of the first
// question of the DNS message b, a response if response is set and a
// query otherwise. The label is "cnt1" and 24 hex digits; case is ignored
// (a server may answer with the question's letters in another case), as
// is everything after the label.
func parseDNSToken(b []byte, response bool) (Token, bool) {
	if len(b) < dnsTokenOff+dnsLabelLen || (b[2]&0x80 != 0) != response || binary.BigEndian.Uint16(b[4:]) == 0 || b[12] != dnsLabelLen {
		return Token{}, false
	}
	label := b[dnsTokenOff : dnsTokenOff+dnsLabelLen]
	if !strings.EqualFold(string(label[:4]), "cnt1") {
		return Token{}, false
	}
	var raw [12]byte
	if _, err := hex.Decode(raw[:], label[4:]); err != nil {
		return Token{}, false
	}
	return Token{RunID: binary.BigEndian.Uint64(raw[:8]), Seq: binary.BigEndian.Uint32(raw[8:])}, true
}
