package capture_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"golang.org/x/net/bpf"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/topology"
)

// The filter every capture socket on an Ethernet device gets: plain ICMP,
// ICMPv6, TCP SYN, UDP and DNS probes and their replies, probes inside
// VXLAN on 4789, 8472 and any port passed in (here 9472, as read from a
// VXLAN device), inside Geneve on 6081, and inside IPIP.
func ExampleFilterFor_ethernet() {
	const magic = 0x636e7431 // probe.Magic, passed in by the caller
	prog, err := capture.FilterFor(capture.LinkEthernet, magic, []uint16{9472})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(prog), "instructions")
	fmt.Println(prog[len(prog)-2], "|", prog[len(prog)-1])
	// Output:
	// 111 instructions
	// ret #262144 | ret #0
}

// A capture point on an ipip device (ARPHRD_TUNNEL, 768) sees packets
// without an Ethernet header: the raw-IP filter and decoder read them from
// the IP header on. The ring finds the device type by itself; this shows
// the same steps on one packet as tunl0 would show it.
func ExampleFilterFor() {
	const magic = 0x636e7431 // probe.Magic
	link, err := capture.LinkTypeOf(768)
	if err != nil {
		log.Fatal(err)
	}
	prog, err := capture.FilterFor(link, magic, nil)
	if err != nil {
		log.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		log.Fatal(err)
	}
	// IPv4[ICMP echo request id 7 seq 1["cnt1"]]
	pkt := []byte{
		0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 98, 0, 1, 10, 98, 0, 2,
		8, 0, 0, 0, 0, 7, 0, 1, 'c', 'n', 't', '1',
	}
	n, err := vm.Run(pkt)
	if err != nil {
		log.Fatal(err)
	}
	o, err := capture.NewDecoderFor(link, nil).Decode(pkt, capture.Meta{Point: "p0"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(link, len(prog), "instructions, accepted:", n > 0)
	fmt.Printf("%s > %s type %d tunnel %q payload %q\n", o.Src, o.Dst, o.ICMPType, o.Tunnel, o.Payload)
	// Output:
	// raw-ip 111 instructions, accepted: true
	// 10.98.0.1 > 10.98.0.2 type 8 tunnel "" payload "cnt1"
}

// Capturing on two points of a path while probes run (needs root). The
// session's handles are all open when Start returns; Stop drains them.
func ExampleStart() {
	ns, err := topology.OpenNetNS("/run/netns/node-a")
	if err != nil {
		log.Fatal(err)
	}
	defer ns.Close()
	points := []topology.Point{
		{ID: "p0", Interface: "flannel.1", NetNS: ns.ID(), Kind: topology.KindVXLAN, RequestDir: topology.TX, TunnelPort: 8472},
		{ID: "p1", Interface: "eth0", NetNS: ns.ID(), Kind: topology.KindUplink, RequestDir: topology.TX},
	}
	var targets []capture.Target
	for _, p := range points {
		targets = append(targets, capture.Target{NS: ns, Point: p})
	}
	s, err := capture.Start(context.Background(), targets, capture.Config{Magic: 0x636e7431, UDPPorts: []uint16{8472}, KeepFrames: true})
	if err != nil {
		log.Fatal(err)
	}
	// ... send probes and wait for their replies or a timeout ...
	c, err := s.Stop()
	if err != nil {
		log.Print(err) // c still holds what was captured
	}
	for _, o := range c.Observations {
		fmt.Println(o.At.Format("15:04:05.000000000"), o.Point, o.Dir, o.Stamp, o.Src, "->", o.Dst, o.Tunnel)
	}
	f, err := os.Create("hops.pcapng")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := capture.WritePcapNG(f, points, c.Observations); err != nil {
		log.Fatal(err)
	}
}
