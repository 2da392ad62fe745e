package topology

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestFlowMatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flow  Flow
		proto uint8
		dport uint16
		want  bool
	}{
		{"icmp flow, icmp entry", Flow{}, unix.IPPROTO_ICMP, 0, true},
		{"icmp flow, icmpv6 entry", Flow{}, unix.IPPROTO_ICMPV6, 0, true},
		{"icmp flow, tcp entry", Flow{}, unix.IPPROTO_TCP, 80, false},
		{"tcp flow, its port", Flow{Proto: ProtoTCP, Port: 80}, unix.IPPROTO_TCP, 80, true},
		{"tcp flow, another port", Flow{Proto: ProtoTCP, Port: 80}, unix.IPPROTO_TCP, 443, false},
		{"tcp flow, udp entry", Flow{Proto: ProtoTCP, Port: 53}, unix.IPPROTO_UDP, 53, false},
		{"udp flow, its port", Flow{Proto: ProtoUDP, Port: 53}, unix.IPPROTO_UDP, 53, true},
		{"udp flow, icmp entry", Flow{Proto: ProtoUDP, Port: 53}, unix.IPPROTO_ICMP, 0, false},
	} {
		if got := tc.flow.matches(tc.proto, tc.dport); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
