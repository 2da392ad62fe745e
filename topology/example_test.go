package topology_test

import (
	"fmt"
	"net/netip"

	"github.com/cnitrace/cnitrace/topology"
)

func ExampleNetNSID() {
	fmt.Println(topology.NetNSID(4026532301))
	// Output: net:[4026532301]
}

func ExamplePath_String() {
	p := topology.Path{
		Target: netip.MustParseAddr("10.244.2.2"),
		Points: []topology.Point{
			{ID: "p0", Interface: "eth0", NetNS: "net:[4026532301]", Kind: topology.KindPod, RequestDir: topology.TX},
			{ID: "p1", Interface: "veth1a2b3c4d", NetNS: "net:[4026531840]", Kind: topology.KindVeth, RequestDir: topology.RX},
		},
	}
	fmt.Println(p.String())
	// Output: eth0@net:[4026532301](pod) -> veth1a2b3c4d@net:[4026531840](veth)
}

// Discover needs two open namespaces: the pod's and the node's. This is the
// sequence `cnitrace path` runs.
func ExampleDiscover() {
	pod, err := topology.OpenNetNS("/run/netns/web-0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pod.Close()
	node, err := topology.CurrentNetNS()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	path, err := topology.Discover(pod, node, netip.MustParseAddr("10.244.2.2"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, pt := range path.Points {
		fmt.Println(pt.ID, pt.Name(), pt.Kind, pt.RequestDir)
	}
}
