package nodestate

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestCompareAddr(t *testing.T) {
	in := []string{"10.0.0.10", "fe80::1", "default", "10.0.0.2", "10.0.0.0/8", "10.0.0.0/24", "", "192.168.1.1/32"}
	want := []string{"", "default", "10.0.0.0/8", "10.0.0.0/24", "10.0.0.2", "10.0.0.10", "192.168.1.1/32", "fe80::1"}
	got := slices.Clone(in)
	slices.SortFunc(got, compareAddr)
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The same state gives the same bytes whatever order it was dumped in.
func TestJSONDeterministic(t *testing.T) {
	routes := []Route{
		{Family: "inet", Table: 254, Type: "unicast", Dst: "default", Gateway: "192.168.255.254", Dev: &LinkRef{Index: 2, Name: "eth0"}, Protocol: "boot", Scope: "global"},
		{Family: "inet", Table: 254, Type: "unicast", Dst: "10.244.2.0/24", Gateway: "10.244.2.0", Dev: &LinkRef{Index: 3, Name: "flannel.1"}, Protocol: "boot", Scope: "global", Flags: []string{"onlink"}},
		{Family: "inet", Table: 254, Type: "unicast", Dst: "10.244.1.0/24", Dev: &LinkRef{Index: 4, Name: "cni0"}, Src: "10.244.1.1", Protocol: "kernel", Scope: "link"},
		{Family: "inet", Table: 255, Type: "local", Dst: "10.244.1.1", Dev: &LinkRef{Index: 4, Name: "cni0"}, Src: "10.244.1.1", Protocol: "kernel", Scope: "host"},
		{Family: "inet6", Table: 254, Type: "unicast", Dst: "fd00:10:244:2::/64", Dev: &LinkRef{Index: 3, Name: "flannel.1"}, Protocol: "boot", Scope: "global", Metric: 1024},
		{Family: "inet", Table: 254, Type: "unicast", Dst: "10.244.3.0/24", Nexthops: []Nexthop{{Gateway: "192.168.255.3", Weight: 1}}, Protocol: "boot", Scope: "global"},
		{Family: "inet", Table: 254, Type: "unicast", Dst: "10.244.3.0/24", Nexthops: []Nexthop{{Gateway: "192.168.255.4", Weight: 1}}, Protocol: "boot", Scope: "global"},
	}
	encode := func(rs []Route) []byte {
		sortRoutes(rs)
		b, err := encodeJSON(Routes{NetNS: "net:[1]", Routes: rs})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := encode(slices.Clone(routes))
	for range 50 {
		rs := slices.Clone(routes)
		rand.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		if got := encode(rs); !bytes.Equal(got, want) {
			t.Fatalf("a shuffled dump encodes differently:\n%s\nwant\n%s", got, want)
		}
	}
	if !bytes.HasSuffix(want, []byte("}\n")) || !bytes.Contains(want, []byte("\n  \"routes\": [\n    {\n      \"family\": \"inet\",")) {
		t.Errorf("not two-space indented JSON with a final newline:\n%s", want)
	}
	if i, j := bytes.Index(want, []byte("10.244.1.0/24")), bytes.Index(want, []byte("10.244.2.0/24")); i > j {
		t.Errorf("routes are not in destination order:\n%s", want)
	}
}
