package nfqdelay_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cnitrace/cnitrace/cmd/cnitrace-bench/nfqdelay"
	"github.com/cnitrace/cnitrace/topology"
)

// Hold every ICMP packet node 1 forwards from its bridge to its overlay for
// 1 ms. The iptables rule, in the node's netns, hands them to queue 7:
//
//	iptables -I FORWARD -i cni0 -o flannel.1 -p icmp -j NFQUEUE --queue-num 7 --queue-bypass
func ExampleDelayer() {
	node, err := topology.OpenNetNS("/run/netns/cnitrace-demo-n1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	d, err := nfqdelay.Open(node, nfqdelay.Config{Queue: 7, Delay: time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Run(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%+v\n", d.Stats())
}

func ExampleConfig_Validate() {
	fmt.Println(nfqdelay.Config{Queue: 7, Delay: time.Millisecond, Loss: 0.1}.Validate())
	fmt.Println(nfqdelay.Config{Queue: 7, Loss: 1.5}.Validate())
	// Output:
	// <nil>
	// loss 1.5: must be between 0 and 1
}
