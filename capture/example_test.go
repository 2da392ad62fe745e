package capture_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/topology"
)

// The filter every capture socket on an Ethernet device gets: plain ICMP
// and ICMPv6 probes, probes inside VXLAN on 4789, 8472 and any port passed
// in (here 9472, as read from a VXLAN device), inside Geneve on 6081, and
// inside IPIP.
func ExampleFilter() {
	const magic = 0x636e7431 // probe.Magic, passed in by the caller
	prog, err := capture.Filter(magic, []uint16{9472})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(prog), "instructions")
	fmt.Println(prog[len(prog)-2], "|", prog[len(prog)-1])
	// Output:
	// 73 instructions
	// ret #262144 | ret #0
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
