package capture

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/cnitrace/cnitrace/topology"
)

// ReadPcapNG reads a pcapng file written by PcapNGWriter (or WritePcapNG)
// back into Observations, with their Frames, in file order. The point is
// the interface description's point= (for files of earlier versions the
// whole description, or the interface's name when there is none);
// direction and stamp source come from the packet comment's dir= and
// stamp=, the direction from the packet flags when the comment does not
// say. Each interface's packets are decoded for its link type (Ethernet,
// or raw IP for Raw, IPv4 and IPv6). A packet that does not decode is an
// error. Statistics blocks are skipped.
func ReadPcapNG(r io.Reader) ([]Observation, error) {
	// Without WantMixedLinkType, NgReader silently skips the packets of
	// every interface whose link type differs from the first one's.
	nr, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		return nil, fmt.Errorf("read pcapng: %w", err)
	}
	ports := parseTunnelPorts(nr.SectionInfo().Comment)
	decs := map[LinkType]*Decoder{}
	var obs []Observation
	for i := 0; ; i++ {
		data, ci, opts, err := nr.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			return obs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read pcapng: packet %d: %w", i, err)
		}
		iface, err := nr.Interface(ci.InterfaceIndex)
		if err != nil {
			return nil, fmt.Errorf("read pcapng: packet %d: %w", i, err)
		}
		link, err := pcapLink(iface.LinkType)
		if err != nil {
			return nil, fmt.Errorf("read pcapng: packet %d: %w", i, err)
		}
		if decs[link] == nil {
			decs[link] = NewDecoderFor(link, ports)
		}
		o, err := decs[link].Decode(data, packetMeta(iface, ci, opts))
		if err != nil {
			return nil, fmt.Errorf("read pcapng: packet %d: %w", i, err)
		}
		o.Frame = data // a fresh slice per packet
		obs = append(obs, o)
	}
}

// pcapLink maps an interface block's link type to the decoder's.
func pcapLink(lt layers.LinkType) (LinkType, error) {
	switch lt {
	case layers.LinkTypeEthernet:
		return LinkEthernet, nil
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		return LinkRawIP, nil
	}
	return 0, fmt.Errorf("link type %s is neither Ethernet nor raw IP", lt)
}

func packetMeta(iface pcapgo.NgInterface, ci gopacket.CaptureInfo, opts pcapgo.NgPacketOptions) Meta {
	m := Meta{Point: interfacePoint(iface), At: ci.Timestamp}
	if opts.Flags != nil {
		switch opts.Flags.Direction {
		case pcapgo.NgEpbFlagDirectionOutbound:
			m.Dir = topology.TX
		case pcapgo.NgEpbFlagDirectionInbound:
			m.Dir = topology.RX
		}
	}
	for _, c := range opts.Comments {
		if dir, stamp, ok := parsePacketComment(c); ok {
			if dir == topology.TX || dir == topology.RX {
				m.Dir = dir
			}
			m.Stamp = stamp
			break
		}
	}
	return m
}

// interfacePoint is the point ID an interface block names: point= in its
// description; in files of earlier versions the whole description, or
// the name when there is none.
func interfacePoint(iface pcapgo.NgInterface) string {
	for _, f := range strings.Fields(iface.Description) {
		if id, ok := strings.CutPrefix(f, pointKey); ok {
			return id
		}
	}
	if iface.Description != "" {
		return iface.Description
	}
	return iface.Name
}

// parsePacketComment reads dir= and stamp= from a packet comment of
// PcapNGWriter ("... point=p0 request dir=tx stamp=skb"), or the direction
// and stamp of an earlier version's ("p2 rx stamp=skb"). ok is false for
// any other comment.
func parsePacketComment(c string) (dir topology.Dir, stamp StampSource, ok bool) {
	f := strings.Fields(c)
	if len(f) == 3 && !strings.Contains(f[0], "=") && strings.HasPrefix(f[2], stampKey) {
		return topology.Dir(f[1]), StampSource(strings.TrimPrefix(f[2], stampKey)), true
	}
	for _, kv := range f {
		if v, found := strings.CutPrefix(kv, dirKey); found {
			dir, ok = topology.Dir(v), true
		}
		if v, found := strings.CutPrefix(kv, stampKey); found {
			stamp, ok = StampSource(v), true
		}
	}
	return dir, stamp, ok
}

// parseTunnelPorts reads the ports from a section comment of PcapNGWriter;
// anything else gives none (the decoder's defaults still apply).
func parseTunnelPorts(comment string) []uint16 {
	var ports []uint16
	for _, f := range strings.Fields(comment) {
		list, ok := strings.CutPrefix(f, tunnelPortsKey)
		if !ok {
			continue
		}
		for _, s := range strings.Split(list, ",") {
			if p, err := strconv.ParseUint(s, 10, 16); err == nil && p > 0 {
				ports = append(ports, uint16(p))
			}
		}
	}
	return ports
}
