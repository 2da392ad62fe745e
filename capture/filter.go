package capture

import (
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
)

// Default VXLAN UDP ports: the IANA port (Calico, Cilium, the kernel's own
// default) and the Linux legacy port flannel uses. They are always matched.
const (
	PortVXLAN      uint16 = 4789
	PortVXLANLinux uint16 = 8472
)

const (
	maxTunnelPorts   = 64     // keeps every jump of the filter within its 8-bit offset
	snapLen          = 262144 // the filter's verdict: keep the whole packet
	etherTypeIPv4    = 0x0800
	ipProtoICMP      = 1
	ipProtoUDP       = 17
	ipFragOffsetMask = 0x1fff
)

// Offsets into an Ethernet frame. X holds the outer IPv4 header length, so
// everything after it is addressed as X + constant.
const (
	offEtherType  = 12
	offIP         = 14            // outer IPv4 header
	offIPFrag     = offIP + 6     // flags and fragment offset
	offIPProto    = offIP + 9     // protocol
	offL4         = offIP         // + X: the outer IPv4 payload
	offUDPDst     = offL4 + 2     // + X
	offICMPData   = offL4 + 8     // + X: after the 8-byte ICMP header
	offInnerEther = offL4 + 8 + 8 // + X: after UDP and VXLAN headers
	offInnerType  = offInnerEther + 12
	offInnerIP    = offInnerEther + 14
	offInnerFrag  = offInnerIP + 6
	offInnerProto = offInnerIP + 9
	// After X += inner IHL*4, the inner ICMP header starts at X + offInnerIP.
	offInnerICMPData = offInnerIP + 8
)

// Filter returns a classic BPF program for an AF_PACKET SOCK_RAW socket on
// an Ethernet device. It accepts, whole, only IPv4 ICMP packets whose ICMP
// data (after the 8-byte ICMP header) starts with magic, either plain
//
//	Ethernet[IPv4[ICMP[magic...]]]
//
// or inside VXLAN on one of the UDP destination ports (4789 and 8472 are
// always included; udpPorts adds the ones found with netlink):
//
//	Ethernet[IPv4[UDP[VXLAN[Ethernet[IPv4[ICMP[magic...]]]]]]]
//
// Both IPv4 headers may carry options. IPv4 fragments other than the first
// are rejected, as is everything else: background traffic never reaches user
// space. The program is checked with bpf.Assemble before it is returned.
func Filter(magic uint32, udpPorts []uint16) ([]bpf.Instruction, error) {
	ports, err := tunnelPorts(udpPorts)
	if err != nil {
		return nil, fmt.Errorf("build capture filter: %w", err)
	}
	var a assembler
	a.outer(ports)
	a.plain(magic)
	a.vxlan(magic)
	a.label("accept")
	a.emit(bpf.RetConstant{Val: snapLen})
	a.label("reject")
	a.emit(bpf.RetConstant{Val: 0})

	prog, err := a.resolve()
	if err != nil {
		return nil, fmt.Errorf("build capture filter: %w", err)
	}
	if _, err := bpf.Assemble(prog); err != nil {
		return nil, fmt.Errorf("build capture filter: assemble: %w", err)
	}
	return prog, nil
}

// tunnelPorts returns the default VXLAN ports plus extra, sorted and without
// duplicates.
func tunnelPorts(extra []uint16) ([]uint16, error) {
	ports := append([]uint16{PortVXLAN, PortVXLANLinux}, extra...)
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
// of conditional jumps are computed rather than counted by hand.
type assembler struct {
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

// outer checks the outer Ethernet and IPv4 headers (first fragments only),
// sets X to the outer IHL*4 and branches on the protocol: ICMP to "plain",
// UDP to a tunnel port to "vxlan", anything else to "reject".
func (a *assembler) outer(ports []uint16) {
	a.emit(bpf.LoadAbsolute{Off: offEtherType, Size: 2})
	a.jumpIf(bpf.JumpEqual, etherTypeIPv4, "", "reject")
	a.emit(bpf.LoadAbsolute{Off: offIPFrag, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, ipFragOffsetMask, "reject", "")
	a.emit(bpf.LoadMemShift{Off: offIP})
	a.emit(bpf.LoadAbsolute{Off: offIPProto, Size: 1})
	a.jumpIf(bpf.JumpEqual, ipProtoICMP, "plain", "")
	a.jumpIf(bpf.JumpEqual, ipProtoUDP, "", "reject")
	a.emit(bpf.LoadIndirect{Off: offUDPDst, Size: 2})
	for _, p := range ports {
		a.jumpIf(bpf.JumpEqual, uint32(p), "vxlan", "")
	}
	a.jump("reject")
}

// plain accepts an ICMP packet whose echo data opens with the magic.
func (a *assembler) plain(magic uint32) {
	a.label("plain")
	a.emit(bpf.LoadIndirect{Off: offICMPData, Size: 4})
	a.jumpIf(bpf.JumpEqual, magic, "accept", "reject")
}

// vxlan checks the inner Ethernet and IPv4 headers (first fragment, ICMP),
// adds the inner IHL*4 to X and accepts when the inner echo data opens with
// the magic.
func (a *assembler) vxlan(magic uint32) {
	a.label("vxlan")
	a.emit(bpf.LoadIndirect{Off: offInnerType, Size: 2})
	a.jumpIf(bpf.JumpEqual, etherTypeIPv4, "", "reject")
	a.emit(bpf.LoadIndirect{Off: offInnerFrag, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, ipFragOffsetMask, "reject", "")
	a.emit(bpf.LoadIndirect{Off: offInnerProto, Size: 1})
	a.jumpIf(bpf.JumpEqual, ipProtoICMP, "", "reject")
	a.emit(bpf.LoadIndirect{Off: offInnerIP, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.emit(bpf.TAX{})
	a.emit(bpf.LoadIndirect{Off: offInnerICMPData, Size: 4})
	a.jumpIf(bpf.JumpEqual, magic, "accept", "reject")
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
