package probe_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// Open opens the socket a Config needs: here TCP SYN probes to port 443 of
// a Service address, each answered by a SYN-ACK (port open) or a RST
// (closed), which Probe.Reply tells apart. The SYNs leave from a block of
// source ports Open reserves in the pod until Close. It needs root
// (CAP_SYS_ADMIN to enter the netns, CAP_NET_RAW for the raw TCP socket),
// so it is compiled but not run by go test; TestPrivilegedTCPProbe runs
// the same steps between two throw-away namespaces.
func ExampleOpen() {
	pod, err := topology.OpenNetNS("/run/netns/web-0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pod.Close()
	cfg := probe.Config{Target: netip.MustParseAddr("10.96.0.10"), Proto: probe.TCP, Port: 443,
		Count: 20, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56}
	conn, err := probe.Open(pod, cfg)
	if err != nil {
		fmt.Println(err) // without CAP_NET_RAW a *topology.CapabilityError
		return
	}
	defer conn.Close()
	res, err := probe.Run(context.Background(), conn, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range res.Probes {
		at, _ := p.KernelSentAt()
		fmt.Println(p.Seq, p.Reply, p.ReplyFrom, p.ReceivedAt.Sub(at))
	}
}
