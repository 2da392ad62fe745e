package lab_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// Build a lab, ping pod 2 from pod 1 across the VXLAN overlay, slow node 1's
// forwarding down with 20,000 iptables rules, and remove everything again.
// It needs root; tests use labtest.New instead, which also checks the
// cleanup.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Config{}) // random name: cnitrace-<6 hex>
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	pod1, pod2 := l.Nodes[0].Pod, l.Nodes[1].Pod
	fmt.Printf("lab %s: pod %s in %s, pod %s in %s\n", l.Name, pod1.Addr, pod1.NSPath, pod2.Addr, pod2.NSPath)

	if err := l.BloatForward(ctx, 1, 20000); err != nil {
		log.Fatal(err)
	}
	out, err := l.Command(ctx, pod1.NSPath, "ping", "-c", "3", "-i", "0.2", pod2.Addr.String()).CombinedOutput()
	if err != nil {
		log.Fatalf("ping: %v\n%s", err, out)
	}
	fmt.Printf("%s", out)
}

// Delay the network between the nodes by 2 ms each way (the RTT grows by
// 4 ms), drop 20% of the ICMP requests node 1 forwards, then clear both.
// The delay line runs in this process until SetFaults or Close stops it.
func ExampleLab_SetFaults() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	var f lab.Faults
	if err := f.SetDelay("network=2ms"); err != nil { // as `cnitrace-lab up --delay network=2ms`
		log.Fatal(err)
	}
	f.ForwardRequestLoss = 0.2
	if err := l.SetFaults(ctx, f); err != nil {
		log.Fatal(err)
	}
	pod1, pod2 := l.Nodes[0].Pod, l.Nodes[1].Pod
	out, _ := l.Command(ctx, pod1.NSPath, "ping", "-c", "20", "-i", "0.05", pod2.Addr.String()).CombinedOutput()
	fmt.Printf("%s", out)
	if stats, ok := l.WireStats(); ok {
		fmt.Println("delay line:", stats)
	}
	if err := l.SetFaults(ctx, lab.Faults{}); err != nil { // the wire goes too
		log.Fatal(err)
	}
}
