package capture

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// BenchmarkDecode is the per-packet cost of turning a captured frame into
// an Observation, for ICMP, TCP and UDP probes, plain and encapsulated.
func BenchmarkDecode(b *testing.B) {
	for _, bf := range benchFrames(b) {
		if !bf.probe {
			continue
		}
		b.Run(bf.name, func(b *testing.B) {
			d := NewDecoderFor(LinkEthernet, nil)
			m := Meta{Point: "p0", At: time.Unix(0, 0), Stamp: StampCopy}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decode(bf.frame, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFilter runs the probe filter in x/net/bpf's interpreter: an
// upper bound of what the kernel's JIT spends on every packet of a point.
// The background frames are what most packets at a busy point are, and
// what the filter costs the node.
func BenchmarkFilter(b *testing.B) {
	prog, err := FilterFor(LinkEthernet, testMagic, nil)
	if err != nil {
		b.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		b.Fatal(err)
	}
	for _, bf := range benchFrames(b) {
		b.Run(bf.name, func(b *testing.B) {
			for b.Loop() {
				if n, err := vm.Run(bf.frame); err != nil || (n > 0) != bf.probe {
					b.Fatalf("filter says %d (%v) to %s", n, err, bf.name)
				}
			}
		})
	}
}

type benchFrame struct {
	name  string
	frame []byte
	probe bool
}

// benchFrames are probes and background, on Ethernet.
func benchFrames(b *testing.B) []benchFrame {
	vx := func(s stack) stack { return overVXLAN(PortVXLANLinux, underA, underB, s) }
	http := func() stack {
		return tcpPacket(overlA, overlB, &layers.TCP{SrcPort: 51234, DstPort: 80, Seq: 1, Ack: 2, ACK: true, PSH: true, Window: 502}, httpRequest)
	}
	dnsOther := func() stack {
		return udpPacket(overlA, overlB, 40005, 53, dnsQuery("kubernetes.default.svc.cluster.local"))
	}
	frames := []struct {
		name  string
		s     stack
		probe bool
	}{
		{"icmp", request4(), true},
		{"vxlan-icmp", vx(request4()), true},
		{"vxlan-tcp-syn", vx(tcpPacket(overlA, overlB, tcpSYN(), nil)), true},
		{"vxlan-tcp-syn-ack", vx(tcpPacket(overlB, overlA, tcpReply(true, false, tokISN+1), nil)), true},
		{"vxlan-dns-answer", vx(udpPacket(overlB, overlA, 53, 40003, dnsAnswer(dnsProbeName))), true},
		{"vxlan-port-unreachable", vx(unreachable(overlA, overlB, 3, 3, 1, 4, udpPacket(overlA, overlB, 40003, 53, dnsQuery(dnsProbeName)), 0)), true},
		{"vxlan-tcp-unreachable", vx(unreachable(overlA, overlB, 3, 3, 1, 4, tcpPacket(overlA, overlB, tcpSYN(), nil), 0)), true},
		{"background-tcp", http(), false},
		{"background-vxlan-tcp", vx(http()), false},
		{"background-dns", dnsOther(), false},
		{"background-vxlan-dns", vx(dnsOther()), false},
	}
	var out []benchFrame
	for _, f := range frames {
		out = append(out, benchFrame{f.name, onLink(b, LinkEthernet, f.s), f.probe})
	}
	return out
}
