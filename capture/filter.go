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
	maxTunnelPorts   = 64     // VXLAN ports; keeps every jump of the filter within its 8-bit offset
	snapLen          = 262144 // the filter's verdict: keep the whole packet
	etherTypeIPv4    = 0x0800
	etherTypeIPv6    = 0x86dd
	etherTypeTEB     = 0x6558 // Transparent Ethernet Bridging: Geneve carries Ethernet
	ipProtoICMP      = 1
	ipProtoIPIP      = 4
	ipProtoUDP       = 17
	ipProtoICMPv6    = 58
	icmpv6EchoReq    = 128
	icmpv6EchoReply  = 129
	ipFragOffsetMask = 0x1fff
	ipv6HeaderLen    = 40
	etherHeaderLen   = 14
	tunnelHeaderLen  = 8 + 8 // UDP and the fixed VXLAN or Geneve header
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
)

// FilterFor returns a classic BPF program for an AF_PACKET SOCK_RAW socket
// on a device whose frames start as link says. It accepts, whole, only ICMP
// echo packets whose echo data (after the 8-byte ICMP header) starts with
// magic, under one of these layer stacks (L is the Ethernet header, or
// nothing on a raw-IP link; IP is IPv4 or IPv6):
//
//	L[IPv4[ICMP[magic...]]]
//	L[IPv6[ICMPv6 echo request or reply[magic...]]]
//	L[IP[UDP:vxlan-port[VXLAN[Ethernet[IP[ICMP or ICMPv6[magic...]]]]]]]
//	L[IP[UDP:6081[Geneve+options[Ethernet[IP[ICMP or ICMPv6[magic...]]]]]]]
//	L[IPv4[IPv4[ICMP[magic...]]]]  (IPIP)
//
// The VXLAN ports are 4789, 8472 and udpPorts (6081 in udpPorts is ignored:
// it is Geneve's). IPv4 headers may carry options; IPv4 fragments other
// than the first are rejected. IPv6 extension headers are not followed: the
// ICMPv6 or UDP header must come right after the fixed 40-byte header.
// Everything else is rejected, so background traffic never reaches user
// space. The program is checked with bpf.Assemble before it is returned.
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
// checked; after a Geneve header also its options; after an inner IPv4
// header also its IHL*4. Every load behind X is LoadIndirect: the kernel
// rejects the packet when one reads past its end, so truncated frames never
// pass.
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
// forward, as BPF requires.
func (a *assembler) build(ports []uint16) {
	a.outerIPv4()
	a.ipv4ICMP("ipip", a.base)
	a.outerIPv6()
	a.ipv6ICMP("icmp6", a.base)
	a.udp(ports)
	a.geneve()
	a.innerEthernet()
	a.ipv4ICMP("inner4", a.base+tunnelHeaderLen+etherHeaderLen)
	a.ipv6ICMP("inner6", a.base+tunnelHeaderLen+etherHeaderLen)
	a.label("accept")
	a.emit(bpf.RetConstant{Val: snapLen})
	a.label("reject")
	a.emit(bpf.RetConstant{Val: 0})
}

// outerIPv4 checks the outer IPv4 header (first fragments only), sets X to
// its IHL*4 and branches on the protocol: ICMP is checked right here, UDP
// goes to "udp", IPIP to "ipip", anything else to "reject".
func (a *assembler) outerIPv4() {
	a.label("ip4")
	a.emit(bpf.LoadAbsolute{Off: a.base + offIP4Frag, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, ipFragOffsetMask, "reject", "")
	a.emit(bpf.LoadMemShift{Off: a.base})
	a.emit(bpf.LoadAbsolute{Off: a.base + offIP4Proto, Size: 1})
	a.jumpIf(bpf.JumpEqual, ipProtoUDP, "udp", "")
	a.jumpIf(bpf.JumpEqual, ipProtoIPIP, "ipip", "")
	a.jumpIf(bpf.JumpEqual, ipProtoICMP, "", "reject")
	a.emit(bpf.LoadIndirect{Off: a.base + offICMPData, Size: 4})
	a.jumpIf(bpf.JumpEqual, a.magic, "accept", "reject")
}

// outerIPv6 sends UDP to "udp" with X = 40 and everything else to "icmp6"
// with X = 0, which accepts only ICMPv6.
func (a *assembler) outerIPv6() {
	a.label("ip6")
	a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: 0})
	a.emit(bpf.LoadAbsolute{Off: a.base + offIP6Next, Size: 1})
	a.jumpIf(bpf.JumpEqual, ipProtoUDP, "", "icmp6")
	a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: ipv6HeaderLen})
	a.jump("udp")
}

// ipv4ICMP checks an IPv4 header at X+at (first fragment, ICMP), adds its
// IHL*4 to X and accepts when the echo data opens with the magic.
func (a *assembler) ipv4ICMP(label string, at uint32) {
	a.label(label)
	a.emit(bpf.LoadIndirect{Off: at + offIP4Frag, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, ipFragOffsetMask, "reject", "")
	a.emit(bpf.LoadIndirect{Off: at + offIP4Proto, Size: 1})
	a.jumpIf(bpf.JumpEqual, ipProtoICMP, "", "reject")
	a.emit(bpf.LoadIndirect{Off: at, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.emit(bpf.TAX{})
	a.emit(bpf.LoadIndirect{Off: at + offICMPData, Size: 4})
	a.jumpIf(bpf.JumpEqual, a.magic, "accept", "reject")
}

// ipv6ICMP checks an IPv6 header at X+at whose next header is ICMPv6, an
// echo request or reply, and accepts when the echo data opens with the
// magic.
func (a *assembler) ipv6ICMP(label string, at uint32) {
	a.label(label)
	a.emit(bpf.LoadIndirect{Off: at + offIP6Next, Size: 1})
	a.jumpIf(bpf.JumpEqual, ipProtoICMPv6, "", "reject")
	a.emit(bpf.LoadIndirect{Off: at + ipv6HeaderLen, Size: 1})
	a.jumpIf(bpf.JumpGreaterOrEqual, icmpv6EchoReq, "", "reject")
	a.jumpIf(bpf.JumpGreaterThan, icmpv6EchoReply, "reject", "")
	a.emit(bpf.LoadIndirect{Off: at + ipv6HeaderLen + offICMPData, Size: 4})
	a.jumpIf(bpf.JumpEqual, a.magic, "accept", "reject")
}

// udp sends Geneve's port to "geneve" and the VXLAN ports straight to the
// inner Ethernet header, which follows the 8-byte VXLAN header.
func (a *assembler) udp(ports []uint16) {
	a.label("udp")
	a.emit(bpf.LoadIndirect{Off: a.base + offUDPDst, Size: 2})
	a.jumpIf(bpf.JumpEqual, uint32(PortGeneve), "geneve", "")
	for _, p := range ports {
		a.jumpIf(bpf.JumpEqual, uint32(p), "ether", "")
	}
	a.jump("reject")
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

// innerEthernet dispatches on the ethertype of the tunnelled frame.
func (a *assembler) innerEthernet() {
	a.label("ether")
	a.emit(bpf.LoadIndirect{Off: a.base + tunnelHeaderLen + offEtherType, Size: 2})
	a.jumpIf(bpf.JumpEqual, etherTypeIPv4, "inner4", "")
	a.jumpIf(bpf.JumpEqual, etherTypeIPv6, "inner6", "reject")
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
