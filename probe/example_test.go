package probe_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

func ExamplePayload_Marshal() {
	b := probe.Payload{RunID: 0x1122334455667788, Seq: 3, SentAt: time.Unix(0, 0)}.Marshal(56)
	fmt.Printf("%d bytes, token % x\n", len(b), b[:16])
	p, err := probe.ParsePayload(b)
	fmt.Println(p.Token(), err)
	// Output:
	// 56 bytes, token 63 6e 74 31 11 22 33 44 55 66 77 88 00 00 00 03
	// {1234605616436508552 3} <nil>
}

func ExampleProbe_KernelSentAt() {
	sent := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	p := probe.Probe{
		Seq:        0,
		SentAt:     sent,                             // user space, just before sendto
		SchedAt:    sent.Add(27 * time.Microsecond),  // SCM_TSTAMP_SCHED: entering the pod eth0 queue
		ReceivedAt: sent.Add(180 * time.Microsecond), // user space, just after the reply was read
	}
	at, clock := p.KernelSentAt()
	fmt.Printf("send time from %s; RTT %v from the kernel, %v from user space\n", clock, p.ReceivedAt.Sub(at), p.RTT())

	p.SchedAt = time.Time{} // a socket without TX timestamps
	_, clock = p.KernelSentAt()
	fmt.Println("without stamps:", clock)
	// Output:
	// send time from kernel-sched; RTT 153µs from the kernel, 180µs from user space
	// without stamps: user
}

// ListenFor opens the socket of the target's family, so one code path
// probes IPv4 and IPv6 pods alike: here an IPv6 pod address, with ICMPv6
// echo requests and the same token and TX timestamps as over IPv4. It needs
// root (CAP_SYS_ADMIN to enter the netns, CAP_NET_RAW for the socket), so
// it is compiled but not run by go test; TestPrivilegedIPv6Probe runs the
// same steps between two throw-away namespaces.
func ExampleListenFor() {
	pod, err := topology.OpenNetNS("/run/netns/web-0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pod.Close()
	target := netip.MustParseAddr("fd00:10:244:2::7")
	conn, err := probe.ListenFor(pod, target) // raw ICMPv6 socket, made in pod's netns
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	res, err := probe.Run(context.Background(), conn, probe.Config{
		Target: target, Count: 20, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range res.Probes {
		at, clock := p.KernelSentAt()
		fmt.Println(p.Seq, p.Answered(), clock, p.ReceivedAt.Sub(at))
	}
}

// RunSources sends the same probes from two places at once, here from a
// pod's netns and from the node's (where a hostNetwork pod would send
// from), the node's falling half-way between the pod's: both cross the
// node's forwarding path within the same few milliseconds, and what the pod
// adds shows in the difference. Each source has a socket and a run id of
// its own. Like ExampleListenFor it needs root, so it is compiled but not
// run; TestRunSourcesInterleaves makes the same call on fake sockets.
func ExampleRunSources() {
	target := netip.MustParseAddr("10.244.2.7")
	var sources []probe.Source
	for _, path := range []string{"/run/netns/web-0", "/proc/1/ns/net"} {
		ns, err := topology.OpenNetNS(path)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer ns.Close()
		conn, err := probe.ListenFor(ns, target) // made in ns, used from here
		if err != nil {
			fmt.Println(err)
			return
		}
		defer conn.Close()
		sources = append(sources, probe.Source{
			Name: "netns " + ns.ID(),
			Conn: conn,
			Config: probe.Config{
				Target: target, Count: 20, Interval: 10 * time.Millisecond, Timeout: time.Second, Size: 56,
				RunID: probe.NewRunID(),
			},
		})
	}
	results, err := probe.RunSources(context.Background(), sources)
	if err != nil {
		fmt.Println(err) // e.g. probes from netns net:[4026531840]: send echo request 3 to 10.244.2.7: ...
	}
	for i, res := range results { // none if a source failed its check; else one per source, partial after an error
		answered := 0
		for _, p := range res.Probes {
			if p.Answered() {
				answered++
			}
		}
		fmt.Printf("%s: %d of %d answered\n", sources[i].Name, answered, len(res.Probes))
	}
}
