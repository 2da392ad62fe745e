package probe

import (
	"github.com/cnitrace/cnitrace/topology"
)

// Open opens the socket Run needs to send cfg's probes from inside ns,
// of cfg.Target's family (v4-mapped addresses count as IPv4); the socket
// stays bound to ns, and Close releases everything it holds. cfg is
// validated first (Config.Validate).
//
//   - ICMP: ListenFor's raw ICMP or ICMPv6 socket (CAP_NET_RAW).
//   - TCP: a raw IPPROTO_TCP socket (CAP_NET_RAW), whose socket filter
//     lets through only the answers to its SYNs, and a block of source
//     ports reserved for the socket's life by as many TCP sockets bound
//     to them (never listening, never connected): one port per probe
//     that cfg can have in flight, with a margin (MaxTCPPorts at most).
//     Run accepts a later Config on it as long as the block is big
//     enough. Without CAP_NET_RAW the error is a
//     *topology.CapabilityError.
//   - UDP: an ordinary UDP socket bound to an ephemeral port (no
//     capability), which also reads the ICMP errors its probes draw
//     (IP_RECVERR).
//
// Every kind reports the kernel's TX timestamps of every request.
func Open(ns *topology.NetNS, cfg Config) (Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Proto {
	case TCP:
		return listenTCP(ns, cfg)
	case UDP:
		return listenUDP(ns, cfg.Target)
	}
	return ListenFor(ns, cfg.Target)
}
