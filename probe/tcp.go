package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"time"

	"golang.org/x/net/bpf"
)

// The TCP SYN probe, as docs/probe.md ("TCP and UDP probes") lays it out.
const (
	// tcpISNMagic is the top half of every probe's ISN, and so of the
	// acknowledgement number of its SYN-ACK or RST: "cn".
	tcpISNMagic = 0x636e
	// tcpOptionKind is the RFC 6994 experimental option that carries the
	// token, with ExID tcpISNMagic, then the rest of Magic, the run id and
	// the sequence.
	tcpOptionKind = 254
	tcpOptionLen  = 18
	// tcpHeaderLen is the SYN's header: 20 bytes, the token option (18),
	// MSS (4) and two NOPs.
	tcpHeaderLen = 44
	// tcpTokenOff is where Magic starts in the TCP header: the option's
	// ExID, two bytes into the first option.
	tcpTokenOff = 22
	// tcpWindow is the SYN's window, Linux's for a 1460-byte MSS.
	tcpWindow = 64240
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// MaxTCPPorts is the most source ports a TCP run reserves in the pod: one
// per probe that can be in flight at once, and a margin (tcpPorts).
// Config.Validate refuses a Timeout that would need more at the Interval
// asked for. They are ports the pod's own connections cannot use meanwhile.
const MaxTCPPorts = 1024

// tcpPorts returns how many source ports a TCP run of c reserves: a power
// of two, so that a reply's port follows from its sequence modulo 32768,
// at least the probes that can be in flight at once (Timeout/Interval, and
// one), four times that when room allows, so a port is reused at least
// four timeouts apart, and no more than the probes sent.
func tcpPorts(c Config) (int, error) {
	need := 1
	if c.Count != 1 && c.Interval > 0 {
		need = int(min(c.Timeout/c.Interval, MaxInFlight)) + 1
	}
	if need > MaxTCPPorts {
		return 0, fmt.Errorf("timeout %s: at interval %s up to %d TCP probes would be in flight at once, each from a source port of its own, and at most %d ports are reserved (shorten the timeout or lengthen the interval)",
			c.Timeout, c.Interval, need, MaxTCPPorts)
	}
	n := min(ceilPow2(4*need), MaxTCPPorts)
	if c.Count > 0 {
		n = min(n, ceilPow2(c.Count))
	}
	return max(n, ceilPow2(need)), nil
}

// ceilPow2 returns the smallest power of two >= n, for 1 <= n <= 2^30.
func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// portBlock is the run's source ports: size (a power of two, at most
// MaxTCPPorts) consecutive ports from base.
type portBlock struct {
	base, size uint16
}

func (b portBlock) contains(p uint16) bool { return p >= b.base && p-b.base < b.size }

// tcpISN is probe seq's initial sequence number: 0x636e0000 | (seq mod
// 32768) << 1. Its low bit is 0, so ISN+1, which the answer acknowledges,
// keeps the top half 0x636e.
func tcpISN(seq uint32) uint32 { return tcpISNMagic<<16 | (seq&lowMask)<<1 }

// tcpLow returns the low 15 bits of the sequence of the probe an
// acknowledgement number answers, and false when ack does not acknowledge
// a probe's ISN.
func tcpLow(ack uint32) (uint32, bool) {
	if ack>>16 != tcpISNMagic || ack&1 != 1 {
		return 0, false
	}
	return ((ack - 1) & 0xffff) >> 1, true
}

// tcpCodec speaks TCP SYN: the token in a TCP option, the answer tied to
// its SYN by the acknowledgement number and the 4-tuple.
type tcpCodec struct {
	v6     bool
	target netip.AddrPort // the target address is unmapped
	ports  portBlock
	runID  uint64
	// rot turns the block by run, so a late answer to an earlier run on
	// the same socket lands on another port than this run's probe of the
	// same low sequence.
	rot uint32
	mss uint16
	// src is the IPv4 source address of the SYNs, for the checksum;
	// lookup finds it (and pins it for the sends) while it is invalid.
	// IPv6 SYNs leave the checksum to the kernel (IPV6_CHECKSUM).
	src    netip.Addr
	lookup func() (netip.Addr, error)
	syn    [tcpHeaderLen]byte // the run's SYN, rewritten in place for each probe
}

func newTCPCodec(cfg Config, ports portBlock, lookup func() (netip.Addr, error)) *tcpCodec {
	target := cfg.Target.Unmap()
	c := &tcpCodec{
		v6: target.Is6(), target: netip.AddrPortFrom(target, uint16(cfg.Port)), ports: ports,
		runID: cfg.RunID, rot: uint32(cfg.RunID), mss: 1460, lookup: lookup,
	}
	if c.v6 {
		c.mss = 1440
	}
	return c
}

// sport is probe seq's source port. It depends on seq mod 32768 only (the
// block's size divides 32768), which a reply tells.
func (c *tcpCodec) sport(seq uint32) uint16 {
	return c.ports.base + uint16((seq+c.rot)&uint32(c.ports.size-1))
}

func (c *tcpCodec) dst() netip.AddrPort { return netip.AddrPortFrom(c.target.Addr(), 0) }

func (c *tcpCodec) what() string { return "TCP SYN" }

func (c *tcpCodec) srcPort(seq uint32) uint16 { return c.sport(seq) }

// request builds probe seq's SYN, docs/probe.md's table:
//
//	TCP: sport dport | ISN | ack 0 | b0 02 fb f0 (44 bytes, SYN, window 64240) | csum 0000
//	fe 12 63 6e | 74 31 <run id, 8> <seq, 4> | 02 04 <MSS, 2> | 01 01
//
// It returns the codec's own buffer, valid until the next request, every
// byte of it written again.
func (c *tcpCodec) request(seq uint32, _ time.Time) ([]byte, error) {
	b := c.syn[:]
	clear(b)
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
		return b, nil // the kernel fills the checksum (IPV6_CHECKSUM 16)
	}
	if !c.src.IsValid() && c.lookup != nil {
		// No route yet: the send fails the same way and is recorded as
		// refused; the next request looks again.
		c.src, _ = c.lookup()
	}
	src := c.src
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	binary.BigEndian.PutUint16(b[16:], tcpChecksum(src, c.target.Addr(), b))
	return b, nil
}

// match recognises the SYN-ACK or RST that answers one of the run's SYNs:
// from the target's address and port, to the probe's source port, with ACK
// and one of SYN and RST, acknowledging a probe's ISN. A raw IPv4 read
// starts with the IP header; a raw IPv6 read with the TCP header, its
// sender in from.
func (c *tcpCodec) match(msg []byte, from netip.Addr) (reply, bool) {
	tcp := msg
	if !c.v6 {
		ihl, ok := ipv4HeaderLen(msg, 6)
		if !ok {
			return reply{}, false
		}
		from, tcp = netip.AddrFrom4([4]byte(msg[12:16])), msg[ihl:]
	}
	if len(tcp) < 20 || from.Unmap() != c.target.Addr() || binary.BigEndian.Uint16(tcp[0:]) != c.target.Port() {
		return reply{}, false
	}
	kind := SynAck
	switch tcp[13] & (tcpSYN | tcpRST | tcpACK) {
	case tcpSYN | tcpACK:
	case tcpRST | tcpACK:
		kind = Reset
	default:
		return reply{}, false
	}
	low, ok := tcpLow(binary.BigEndian.Uint32(tcp[8:]))
	if !ok || binary.BigEndian.Uint16(tcp[2:]) != c.sport(low) {
		return reply{}, false
	}
	return reply{seq: low, low: true, kind: kind, from: from.Unmap()}, true
}

// matchErr recognises an ICMP destination unreachable quoting one of the
// run's SYNs, from its TCP header on: the ports and the ISN (the first 8
// bytes, which any router quotes) give the low sequence; a quote of the
// whole header gives the token.
func (c *tcpCodec) matchErr(e icmpErr) (reply, bool) {
	q := e.data
	if !e.unreachable() || e.v6 != c.v6 || len(q) < 8 || (e.dst.Addr().IsValid() && e.dst.Addr().Unmap() != c.target.Addr()) {
		return reply{}, false
	}
	isn := binary.BigEndian.Uint32(q[4:])
	low := (isn & 0xffff) >> 1
	if binary.BigEndian.Uint16(q[2:]) != c.target.Port() || isn != tcpISN(low) || binary.BigEndian.Uint16(q[0:]) != c.sport(low) {
		return reply{}, false
	}
	r := reply{seq: low, low: true, kind: Unreachable, from: e.from, code: e.code}
	if len(q) >= tcpTokenOff+16 && binary.BigEndian.Uint32(q[tcpTokenOff:]) == Magic {
		if binary.BigEndian.Uint64(q[26:]) != c.runID {
			return reply{}, false
		}
		r.seq, r.low = binary.BigEndian.Uint32(q[34:]), false
		if r.seq&lowMask != low {
			return reply{}, false
		}
	}
	return r, true
}

// ipv4HeaderLen returns the length of the IPv4 header b starts with, if
// it is one of protocol proto and of a first (or only) fragment.
func ipv4HeaderLen(b []byte, proto byte) (int, bool) {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != proto || binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
		return 0, false
	}
	l := int(b[0]&0x0f) << 2
	return l, l >= 20 && l <= len(b)
}

// tcpChecksum is the checksum of the TCP segment seg (its checksum field
// zero) from src to dst, IPv4 pseudo-header included (RFC 793).
func tcpChecksum(src, dst netip.Addr, seg []byte) uint16 {
	s4, d4 := src.Unmap().As4(), dst.Unmap().As4()
	var pseudo [12]byte
	copy(pseudo[0:], s4[:])
	copy(pseudo[4:], d4[:])
	pseudo[9] = 6
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(seg)))
	sum := onesSum(onesSum(0, pseudo[:]), seg)
	return ^fold(sum)
}

func onesSum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// errNoPorts is wrapped by tcpFilter for an empty block.
var errNoPorts = errors.New("no source ports")

// tcpFilter is the socket filter of a raw TCP socket for the block: only
// segments to one of its ports, with ACK and SYN or RST, whose
// acknowledgement number's top half is 0x636e, wake the reader; a busy
// pod's other TCP traffic (a raw TCP socket reads all of it) is dropped in
// the kernel. A raw IPv4 socket's filter sees the IP header (its length
// from the IHL, in X), a raw IPv6 socket's the TCP header.
func tcpFilter(ports portBlock, v6 bool) ([]bpf.RawInstruction, error) {
	if ports.size == 0 {
		return nil, errNoPorts
	}
	first := bpf.Instruction(bpf.LoadMemShift{Off: 0}) // X = 4*(ip[0]&0xf)
	if v6 {
		first = bpf.LoadConstant{Dst: bpf.RegX, Val: 0}
	}
	last := uint32(ports.base) + uint32(ports.size) - 1
	prog := []bpf.Instruction{
		first,
		bpf.LoadIndirect{Off: 2, Size: 2}, // destination port
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: uint32(ports.base), SkipTrue: 8},
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: last, SkipTrue: 7},
		bpf.LoadIndirect{Off: 13, Size: 1}, // flags
		bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: tcpACK, SkipTrue: 5},
		bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: tcpSYN | tcpRST, SkipTrue: 4},
		bpf.LoadIndirect{Off: 8, Size: 4}, // acknowledgement number
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: tcpISNMagic, SkipTrue: 1},
		bpf.RetConstant{Val: 0x40000},
		bpf.RetConstant{Val: 0},
	}
	return bpf.Assemble(prog)
}
