package probe

import (
	"fmt"
	"net/netip"
	"time"
)

// codec is what differs between the protocols a run can speak: how probe
// seq's packet is built, and how a datagram read from the socket or an
// ICMP error from its error queue is recognised as the answer to one of
// this run's probes. Everything else (the schedule, the window, stamps,
// deadlines, hand-over) is shared: one send path and one receive loop for
// every protocol. A socket makes the codec of a run (endpoint.codec), so
// that only a socket opened for cfg's protocol and family can send it.
type codec interface {
	// request returns probe seq's packet as the socket sends it, its token
	// stamped with sentAt where the format has room for it. The packet is
	// the codec's own buffer, rewritten by the next request: a probe
	// allocates nothing, and the send copies it into the kernel.
	request(seq uint32, sentAt time.Time) ([]byte, error)
	// dst is where every request goes.
	dst() netip.AddrPort
	// match recognises a datagram as the socket read it (raw IPv4 reads
	// start with the IP header) from from, the sender the socket reported
	// (invalid when it reported none).
	match(msg []byte, from netip.Addr) (reply, bool)
	// matchErr recognises an ICMP error from the socket's error queue.
	matchErr(e icmpErr) (reply, bool)
	// what names one request in errors: "echo request", "TCP SYN", ...
	what() string
	// srcPort is the source port probe seq leaves from: 0 for ICMP echo.
	srcPort(seq uint32) uint16
}

// reply is the answer to one of this run's probes, as the receiver hands
// it to the collector.
type reply struct {
	seq uint32
	// low says seq holds only the low 15 bits of the probe's sequence (a
	// TCP reply's acknowledgement number carries no more); the collector
	// resolves it against the probes in flight.
	low  bool
	at   time.Time
	kind Reply
	from netip.Addr // who sent it: the target, or the sender of an ICMP error
	code uint8      // Unreachable: the ICMP code; DNSReply: the RCODE
}

// icmpErr is an ICMP error the kernel queued on a socket with IP_RECVERR
// (IPV6_RECVERR): what it says and what it quotes of the probe.
type icmpErr struct {
	v6        bool // ICMPv6 (SO_EE_ORIGIN_ICMP6), else ICMP
	typ, code uint8
	from      netip.Addr     // the sender of the ICMP error (SO_EE_OFFENDER); invalid when unknown
	dst       netip.AddrPort // the probe's destination, as the quoted headers name it (msg_name)
	// data is the quoted probe from its transport payload on (a UDP
	// socket's) or from its transport header on (a raw socket's): a copy,
	// as long as the ICMP error quoted.
	data []byte
	at   time.Time // when it was read
}

// unreachable reports whether e is a destination unreachable: ICMP type 3
// or ICMPv6 type 1.
func (e icmpErr) unreachable() bool {
	if e.v6 {
		return e.typ == 1
	}
	return e.typ == 3
}

// icmpCodec speaks ICMP or ICMPv6 echo: the token in the echo data.
type icmpCodec struct {
	proto  icmpProto
	target netip.Addr
	id     uint16
	runID  uint64
	// req is the run's echo request, rewritten in place for each probe:
	// the header and the token change, the padding after them was written
	// once. padSum is the padding's ones' complement sum, which the ICMPv4
	// checksum covers in every request alike.
	req    []byte
	padSum uint32
}

// newICMPCodec returns the codec of cfg on an ICMP socket of family p: it
// refuses cfg when it is not an ICMP run to a target of that family.
func newICMPCodec(p icmpProto, cfg Config) (codec, error) {
	if cfg.Proto != ICMP {
		return nil, fmt.Errorf("%s probes need a socket opened for them, got an %s one (open it with Open)", cfg.Proto, p)
	}
	if want := protoFor(cfg.Target); p != want {
		return nil, fmt.Errorf("target %s needs an %s socket, got an %s one (open it with ListenFor)", cfg.Target, want, p)
	}
	req := append(make([]byte, echoHeaderLen), newPayload(cfg.Size)...)
	return &icmpCodec{
		proto: p, target: cfg.Target, id: cfg.ID, runID: cfg.RunID,
		req: req, padSum: uint32(fold(onesSum(0, req[echoHeaderLen+TokenLen:]))),
	}, nil
}

// request rewrites the run's echo request for probe seq and returns it,
// valid until the next request: nothing is allocated per probe.
func (c *icmpCodec) request(seq uint32, sentAt time.Time) ([]byte, error) {
	c.proto.putEchoHeader(c.req, c.id, seq)
	Payload{RunID: c.runID, Seq: seq, SentAt: sentAt}.put(c.req[echoHeaderLen:])
	c.proto.setEchoChecksum(c.req, echoHeaderLen+TokenLen, c.padSum)
	return c.req, nil
}

func (c *icmpCodec) dst() netip.AddrPort { return netip.AddrPortFrom(c.target, 0) }

func (c *icmpCodec) what() string { return "echo request" }

func (c *icmpCodec) srcPort(uint32) uint16 { return 0 }

func (c *icmpCodec) match(msg []byte, from netip.Addr) (reply, bool) {
	if c.proto == protoICMP {
		if src, ok := ipv4Source(msg); ok {
			from = src
		}
	}
	seq, ok := c.proto.matchReply(icmpMessage(c.proto, msg), c.runID)
	return reply{seq: seq, kind: EchoReply, from: from}, ok
}

// matchErr matches nothing: an ICMP socket does not ask for ICMP errors.
func (c *icmpCodec) matchErr(icmpErr) (reply, bool) { return reply{}, false }

// ipv4Source returns the source address of the IPv4 header b starts with.
func ipv4Source(b []byte) (netip.Addr, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(b[12:16])), true
}
