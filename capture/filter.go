package capture

import (
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
)

// Tunnel UDP ports that are always matched: VXLAN on the IANA port (Calico,
// Cilium, the kernel's own default) and on the Linux legacy port flannel
// uses, and Geneve on its IANA port.
const (
	PortVXLAN      uint16 = 4789
	PortVXLANLinux uint16 = 8472
	PortGeneve     uint16 = 6081
)

const (
	maxTunnelPorts    = 64     // VXLAN ports; keeps every jump of the filter within its 8-bit offset
	snapLen           = 262144 // the filter's verdict: keep the whole packet
	etherTypeIPv4     = 0x0800
	etherTypeIPv6     = 0x86dd
	etherTypeTEB      = 0x6558 // Transparent Ethernet Bridging: Geneve carries Ethernet
	ipProtoICMP       = 1
	ipProtoIPIP       = 4
	ipProtoTCP        = 6
	ipProtoUDP        = 17
	ipProtoICMPv6     = 58
	icmpDestUnreach   = 3
	icmpv6DestUnreach = 1
	icmpv6EchoReq     = 128
	icmpv6EchoReply   = 129
	ipFragOffsetMask  = 0x1fff
	ipv6HeaderLen     = 40
	etherHeaderLen    = 14
	udpHeaderLen      = 8
	icmpHeaderLen     = 8          // also ICMPv6 errors: type, code, checksum, 4 unused bytes
	tunnelHeaderLen   = 8 + 8      // UDP and the fixed VXLAN or Geneve header
	tcpTokenOption    = 0xfe12     // kind 254 (RFC 6994), length 18: the probe's first option
	tcpTokenMinOff    = 10 << 4    // data offset (words, high nibble) holding the whole option
	tcpISNMask        = 0xffff0001 // what the filter reads of a reply's acknowledgement and of a quoted SYN's sequence
)

// Offsets inside the headers the filter reads.
const (
	offEtherType = 12
	offIP4Frag   = 6  // flags and fragment offset
	offIP4Proto  = 9  // protocol
	offIP6Next   = 6  // next header
	offUDPDst    = 2  // destination port
	offICMPData  = 8  // echo data, after the 8-byte ICMP header
	offGeneveLen = 8  // from UDP: Ver (2 bits) and Opt Len (6 bits, 4-byte words)
	offGeneveTyp = 10 // from UDP: protocol type
	offTCPSeq    = 4  // sequence number
	offTCPAck    = 8  // acknowledgement number
	offTCPDataOf = 12 // data offset (high nibble)
	offTCPFlags  = 13
	offTCPOption = 20 // the first option's kind and length
	offTCPMagic  = 22 // the first option's data: the magic, then run id and sequence
	offDNSMagic  = 13 // from the UDP payload: 12 header bytes and the first label's length
)

// FilterFor returns a classic BPF program for an AF_PACKET SOCK_RAW socket
// on a device whose frames start as link says. It accepts, whole, only
// probe packets and their replies (L is the Ethernet header, or nothing on
// a raw-IP link; IP is IPv4 or IPv6; T is one of the transports below):
//
//	L[IP[T]]
//	L[IP[UDP:vxlan-port[VXLAN[Ethernet[IP[T]]]]]]
//	L[IP[UDP:6081[Geneve+options[Ethernet[IP[T]]]]]]
//	L[IPv4[IPv4[T]]]  (IPIP)
//
// where T is
//
//	ICMP[any type[magic...]], ICMPv6[echo request or reply[magic...]]
//	TCP with SYN, without ACK, data offset >= 10, first option kind 254 length 18 [magic...]
//	TCP with ACK and SYN or RST, acknowledgement & 0xffff0001 == magic's top 16 bits << 16 | 1
//	UDP[magic...] or UDP[12 bytes, 1 byte, magic in any case...] (a DNS message whose first label opens with it)
//	ICMP type 3 or ICMPv6 type 1 [quoting IP[UDP[either of those payloads]]]
//	ICMP type 3 or ICMPv6 type 1 [quoting IP[TCP, sequence & 0xffff0001 == magic's top 16 bits << 16]]
//
// The VXLAN ports are 4789, 8472 and udpPorts (6081 in udpPorts is ignored:
// it is Geneve's); UDP to a tunnel port is only ever looked into as a
// tunnel. IPv4 headers may carry options (the quoted one too); IPv4
// fragments other than the first are rejected. IPv6 extension headers are
// not followed: the transport header must come right after the fixed
// 40-byte header, in a quote too. Everything else is rejected, so
// background traffic never reaches user space. The program is checked with
// bpf.Assemble before it is returned.
func FilterFor(link LinkType, magic uint32, udpPorts []uint16) ([]bpf.Instruction, error) {
	ports, err := tunnelPorts(udpPorts)
	if err != nil {
		return nil, fmt.Errorf("build capture filter: %w", err)
	}
	a := assembler{magic: magic}
	switch link {
	case LinkEthernet:
		a.ethernet(etherHeaderLen)
	case LinkRawIP:
		a.rawIP()
	default:
		return nil, fmt.Errorf("build capture filter: unknown link type %s", link)
	}
	a.build(ports)
	prog, err := a.resolve()
	if err != nil {
		return nil, fmt.Errorf("build capture filter: %w", err)
	}
	if _, err := bpf.Assemble(prog); err != nil {
		return nil, fmt.Errorf("build capture filter: assemble: %w", err)
	}
	return prog, nil
}

// tunnelPorts returns the default VXLAN ports plus extra, sorted, without
// duplicates and without Geneve's port.
func tunnelPorts(extra []uint16) ([]uint16, error) {
	ports := append([]uint16{PortVXLAN, PortVXLANLinux}, extra...)
	ports = slices.DeleteFunc(ports, func(p uint16) bool { return p == PortGeneve })
	slices.Sort(ports)
	ports = slices.Compact(ports)
	if ports[0] == 0 {
		return nil, fmt.Errorf("UDP port 0 is not a tunnel port")
	}
	if len(ports) > maxTunnelPorts {
		return nil, fmt.Errorf("%d tunnel ports, at most %d supported", len(ports), maxTunnelPorts)
	}
	return ports, nil
}

// assembler lays out a BPF program with named jump targets, so the offsets
// of conditional jumps are computed rather than counted by hand. base is
// where the outer IP header starts (14 after Ethernet, 0 on a raw-IP link).
//
// X holds the length of the headers before the one being read, counted from
// base: the outer IPv4 IHL*4 (or 40 for IPv6) once the outer header is
// checked; after a Geneve header also its options; once inside a tunnel
// also the UDP, VXLAN or Geneve and Ethernet headers (30 bytes); after an
// inner IP header also its length; after an ICMP error's header also the
// quoted IP header's. So every transport header, plain, inside IPIP or a
// tunnel, or quoted, is at X+base and is checked by the same instructions.
// Every load behind X is LoadIndirect: the kernel rejects the packet when
// one reads past its end, so truncated frames never pass.
type assembler struct {
	magic  uint32
	base   uint32
	prog   []bpf.Instruction
	labels map[string]int
	fixups []fixup
}

// fixup is a jump whose targets are resolved once all labels are known. An
// empty label means "the next instruction".
type fixup struct {
	at              int
	onTrue, onFalse string
}

// ethernet dispatches on the ethertype of an Ethernet frame.
func (a *assembler) ethernet(headerLen uint32) {
	a.base = headerLen
	a.emit(bpf.LoadAbsolute{Off: offEtherType, Size: 2})
	a.jumpIf(bpf.JumpEqual, etherTypeIPv4, "ip4", "")
	a.jumpIf(bpf.JumpEqual, etherTypeIPv6, "ip6", "reject")
}

// rawIP dispatches on the version nibble of a frame that starts at the IP
// header.
func (a *assembler) rawIP() {
	a.base = 0
	a.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	a.jumpIf(bpf.JumpEqual, 0x40, "ip4", "")
	a.jumpIf(bpf.JumpEqual, 0x60, "ip6", "reject")
}

// build lays out everything after the link-layer dispatch. All jumps go
// forward, as BPF requires, so whatever jumps to a check comes before it:
// the UDP probe check, which the outer UDP, the inner headers and the ICMP
// errors' quotes all lead to, comes last.
func (a *assembler) build(ports []uint16) {
	a.outerIPv4()
	a.outerIPv6()
	a.udp(ports)
	a.geneve()
	a.innerEthernet()
	a.ipv4()
	a.ipv6()
	a.icmp()
	a.tcpQuote()
	a.tcp()
	a.udpProbe()
	a.label("accept")
	a.emit(bpf.RetConstant{Val: snapLen})
	a.label("reject")
	a.emit(bpf.RetConstant{Val: 0})
}

// outerIPv4 checks the outer IPv4 header (first fragments only), sets X to
// its IHL*4 and branches on the protocol: UDP to "udp" (tunnels, then UDP
// probes), IPIP to the inner IPv4 header's check, ICMP and TCP to theirs.
func (a *assembler) outerIPv4() {
	a.label("ip4")
	a.emit(bpf.LoadAbsolute{Off: a.base + offIP4Frag, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, ipFragOffsetMask, "reject", "")
	a.emit(bpf.LoadMemShift{Off: a.base})
	a.emit(bpf.LoadAbsolute{Off: a.base + offIP4Proto, Size: 1})
	a.jumpIf(bpf.JumpEqual, ipProtoUDP, "udp", "")
	a.jumpIf(bpf.JumpEqual, ipProtoIPIP, "inner4", "")
	a.jumpIf(bpf.JumpEqual, ipProtoICMP, "icmp4", "")
	a.jumpIf(bpf.JumpEqual, ipProtoTCP, "tcp", "reject")
}

// outerIPv6 sets X to 40 and branches on the next header: UDP to "udp",
// ICMPv6 and TCP to their checks.
func (a *assembler) outerIPv6() {
	a.label("ip6")
	a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: ipv6HeaderLen})
	a.emit(bpf.LoadAbsolute{Off: a.base + offIP6Next, Size: 1})
	a.jumpIf(bpf.JumpEqual, ipProtoUDP, "udp", "")
	a.jumpIf(bpf.JumpEqual, ipProtoICMPv6, "icmp6", "")
	a.jumpIf(bpf.JumpEqual, ipProtoTCP, "tcp", "reject")
}

// udp sends Geneve's port to "geneve", the VXLAN ports straight to the
// inner Ethernet header, which follows the 8-byte VXLAN header, and every
// other port to the UDP probe check.
func (a *assembler) udp(ports []uint16) {
	a.label("udp")
	a.emit(bpf.LoadIndirect{Off: a.base + offUDPDst, Size: 2})
	a.jumpIf(bpf.JumpEqual, uint32(PortGeneve), "geneve", "")
	for _, p := range ports {
		a.jumpIf(bpf.JumpEqual, uint32(p), "ether", "")
	}
	a.jump("udpprobe")
}

// geneve checks the Geneve version (0) and protocol type (Ethernet), then
// adds the options' length (Opt Len 4-byte words) to X and falls through
// to the inner Ethernet header.
func (a *assembler) geneve() {
	a.label("geneve")
	a.emit(bpf.LoadIndirect{Off: a.base + offGeneveLen, Size: 1})
	a.jumpIf(bpf.JumpBitsSet, 0xc0, "reject", "")
	a.emit(bpf.LoadIndirect{Off: a.base + offGeneveTyp, Size: 2})
	a.jumpIf(bpf.JumpEqual, etherTypeTEB, "", "reject")
	a.emit(bpf.LoadIndirect{Off: a.base + offGeneveLen, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x3f})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.emit(bpf.TAX{})
}

// innerEthernet dispatches on the ethertype of the tunnelled frame, with
// X moved past the tunnel and inner Ethernet headers, so the inner IP
// header is at X+base like IPIP's. The ethertype waits in scratch memory
// while X is updated.
func (a *assembler) innerEthernet() {
	a.label("ether")
	a.emit(bpf.LoadIndirect{Off: a.base + tunnelHeaderLen + offEtherType, Size: 2})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.addX(tunnelHeaderLen + etherHeaderLen)
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	a.jumpIf(bpf.JumpEqual, etherTypeIPv4, "inner4", "")
	a.jumpIf(bpf.JumpEqual, etherTypeIPv6, "inner6", "reject")
}

// ipv4 checks an inner IPv4 header at X+base (inside IPIP or a tunnel;
// first fragments only), adds its IHL*4 to X and branches on the protocol
// to the transport checks. The protocol waits in scratch memory while X is
// updated.
func (a *assembler) ipv4() {
	a.label("inner4")
	a.emit(bpf.LoadIndirect{Off: a.base + offIP4Frag, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, ipFragOffsetMask, "reject", "")
	a.emit(bpf.LoadIndirect{Off: a.base + offIP4Proto, Size: 1})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.emit(bpf.LoadIndirect{Off: a.base, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.emit(bpf.TAX{})
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	a.jumpIf(bpf.JumpEqual, ipProtoICMP, "icmp4", "")
	a.dispatch()
}

// ipv6 checks an inner IPv6 header at X+base, adds 40 to X and branches on
// the next header to the transport checks.
func (a *assembler) ipv6() {
	a.label("inner6")
	a.emit(bpf.LoadIndirect{Off: a.base + offIP6Next, Size: 1})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.addX(ipv6HeaderLen)
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	a.jumpIf(bpf.JumpEqual, ipProtoICMPv6, "icmp6", "")
	a.dispatch()
}

// dispatch sends TCP and UDP in A to their checks (probes only: there is
// no tunnel in a tunnel), anything else to "reject".
func (a *assembler) dispatch() {
	a.jumpIf(bpf.JumpEqual, ipProtoTCP, "tcp", "")
	a.jumpIf(bpf.JumpEqual, ipProtoUDP, "udpprobe", "reject")
}

// icmp lays out the ICMPv6 and ICMP checks, the header at X+base.
// ICMPv6: an echo request or reply with the magic, or a destination
// unreachable quoting IPv6[UDP or TCP]. ICMP: echo data opening with the
// magic, whatever the type (as before TCP and UDP probes: an ICMP error
// starts its data with the quoted IP header, 0x45, never the magic), or a
// destination unreachable quoting IPv4[UDP or TCP]. ICMPv6 comes first so
// that both share the dispatch on the quoted protocol, which waits in
// scratch memory while X is moved to the quoted transport header: a UDP
// quote goes on to the UDP probe check, a TCP one falls through to
// tcpQuote.
func (a *assembler) icmp() {
	a.label("icmp6")
	a.emit(bpf.LoadIndirect{Off: a.base, Size: 1})
	a.jumpIf(bpf.JumpEqual, icmpv6DestUnreach, "", "echo6")
	a.emit(bpf.LoadIndirect{Off: a.base + icmpHeaderLen + offIP6Next, Size: 1})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.addX(icmpHeaderLen + ipv6HeaderLen)
	a.jump("quote")
	a.label("echo6")
	a.jumpIf(bpf.JumpGreaterOrEqual, icmpv6EchoReq, "", "reject")
	a.jumpIf(bpf.JumpGreaterThan, icmpv6EchoReply, "reject", "")
	a.emit(bpf.LoadIndirect{Off: a.base + offICMPData, Size: 4})
	a.jumpIf(bpf.JumpEqual, a.magic, "accept", "reject")

	a.label("icmp4")
	a.emit(bpf.LoadIndirect{Off: a.base + offICMPData, Size: 4})
	a.jumpIf(bpf.JumpEqual, a.magic, "accept", "")
	a.emit(bpf.LoadIndirect{Off: a.base, Size: 1})
	a.jumpIf(bpf.JumpEqual, icmpDestUnreach, "", "reject")
	a.emit(bpf.LoadIndirect{Off: a.base + icmpHeaderLen + offIP4Proto, Size: 1})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.emit(bpf.LoadIndirect{Off: a.base + icmpHeaderLen, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: icmpHeaderLen})
	a.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.emit(bpf.TAX{})

	a.label("quote")
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	a.jumpIf(bpf.JumpEqual, ipProtoUDP, "udpprobe", "")
	a.jumpIf(bpf.JumpEqual, ipProtoTCP, "", "reject")
}

// tcpQuote lays out the check of a TCP header an ICMP error quotes, at
// X+base: its sequence number is a SYN probe's ISN, the magic's top 16
// bits and the low bit clear (magic>>16<<16 | n<<1). It reads only the
// first 8 bytes (ports and sequence), which every router quotes (RFC 792);
// the quoted flags and options may be cut off.
func (a *assembler) tcpQuote() {
	a.emit(bpf.LoadIndirect{Off: a.base + offTCPSeq, Size: 4})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: tcpISNMask})
	a.jumpIf(bpf.JumpEqual, a.magic&0xffff0000, "accept", "reject")
}

// tcp lays out the TCP check, the header at X+base: a SYN without ACK
// whose first option is kind 254, length 18, its data opening with the
// magic (a probe); or an ACK with SYN or RST whose acknowledgement has the
// magic's top 16 bits and its low bit set (a reply: a probe's ISN is
// magic>>16<<16 | n<<1, acknowledged as ISN+1).
func (a *assembler) tcp() {
	a.label("tcp")
	a.emit(bpf.LoadIndirect{Off: a.base + offTCPFlags, Size: 1})
	a.jumpIf(bpf.JumpBitsSet, uint32(TCPFlagACK), "tcpack", "")
	a.jumpIf(bpf.JumpBitsSet, uint32(TCPFlagSYN), "", "reject")
	a.emit(bpf.LoadIndirect{Off: a.base + offTCPDataOf, Size: 1})
	a.jumpIf(bpf.JumpGreaterOrEqual, tcpTokenMinOff, "", "reject")
	a.emit(bpf.LoadIndirect{Off: a.base + offTCPOption, Size: 2})
	a.jumpIf(bpf.JumpEqual, tcpTokenOption, "", "reject")
	a.emit(bpf.LoadIndirect{Off: a.base + offTCPMagic, Size: 4})
	a.jumpIf(bpf.JumpEqual, a.magic, "accept", "reject")
	a.label("tcpack")
	a.jumpIf(bpf.JumpBitsSet, uint32(TCPFlagSYN|TCPFlagRST), "", "reject")
	a.emit(bpf.LoadIndirect{Off: a.base + offTCPAck, Size: 4})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: tcpISNMask})
	a.jumpIf(bpf.JumpEqual, a.magic&0xffff0000|1, "accept", "reject")
}

// udpProbe lays out the UDP check, the header at X+base: the payload opens
// with the magic (a UDP probe, or its echo), or has it at offset 13 in any
// case (a DNS query or answer whose question's first label opens with
// "cnt1", or "CnT1" from a server that changed the case: 0x20 encoding).
func (a *assembler) udpProbe() {
	a.label("udpprobe")
	a.emit(bpf.LoadIndirect{Off: a.base + udpHeaderLen, Size: 4})
	a.jumpIf(bpf.JumpEqual, a.magic, "accept", "")
	a.emit(bpf.LoadIndirect{Off: a.base + udpHeaderLen + offDNSMagic, Size: 4})
	if m := caseMask(a.magic); m != 0 {
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpOr, Val: m})
	}
	a.jumpIf(bpf.JumpEqual, a.magic|caseMask(a.magic), "accept", "reject")
}

// caseMask has 0x20, the bit that tells an ASCII letter's cases apart, in
// each byte of magic that is a letter (0x20202000 for "cnt1"). A word OR
// the mask equals magic OR the mask exactly when it is magic with its
// letters in any case: for a letter, only its two cases have that byte OR
// 0x20; the other bytes are compared as they are.
func caseMask(magic uint32) uint32 {
	var m uint32
	for shift := 0; shift < 32; shift += 8 {
		if c := byte(magic>>shift) | 0x20; 'a' <= c && c <= 'z' {
			m |= 0x20 << shift
		}
	}
	return m
}

// addX adds n to X (through A).
func (a *assembler) addX(n uint32) {
	a.emit(bpf.TXA{})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: n})
	a.emit(bpf.TAX{})
}

func (a *assembler) emit(ins bpf.Instruction) { a.prog = append(a.prog, ins) }

func (a *assembler) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.prog)
}

func (a *assembler) jumpIf(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), onTrue: ifTrue, onFalse: ifFalse})
	a.emit(bpf.JumpIf{Cond: cond, Val: val})
}

func (a *assembler) jump(to string) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), onTrue: to})
	a.emit(bpf.Jump{})
}

func (a *assembler) resolve() ([]bpf.Instruction, error) {
	for _, f := range a.fixups {
		skipTrue, err := a.skip(f.at, f.onTrue)
		if err != nil {
			return nil, err
		}
		skipFalse, err := a.skip(f.at, f.onFalse)
		if err != nil {
			return nil, err
		}
		switch ins := a.prog[f.at].(type) {
		case bpf.JumpIf:
			ins.SkipTrue, ins.SkipFalse = uint8(skipTrue), uint8(skipFalse)
			a.prog[f.at] = ins
		case bpf.Jump:
			a.prog[f.at] = bpf.Jump{Skip: uint32(skipTrue)}
		}
	}
	return a.prog, nil
}

// skip returns how many instructions a jump at pc skips to reach label.
func (a *assembler) skip(pc int, label string) (int, error) {
	if label == "" {
		return 0, nil
	}
	target, ok := a.labels[label]
	if !ok {
		return 0, fmt.Errorf("jump at %d to undefined label %q", pc, label)
	}
	n := target - pc - 1
	if n < 0 || n > 255 {
		return 0, fmt.Errorf("jump at %d to %q out of range (%d)", pc, label, n)
	}
	return n, nil
}
