package capture

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/cnitrace/cnitrace/topology"
)

// The pcapng layout cnitrace writes and reads back:
//   - the section comment lists the tunnel ports: "cnitrace tunnel_ports=4789,8472"
//   - one interface block per point: name ifname@netns, description the
//     point ID, link type Ethernet or, for a raw-IP point, Raw (101),
//     nanosecond timestamps
//   - one enhanced packet block per observation with its frame, its kernel
//     timestamp, the direction flag and a comment "p2 rx stamp=skb".
const (
	sectionPrefix   = "cnitrace"
	tunnelPortsKey  = "tunnel_ports="
	stampCommentKey = "stamp="
)

// WritePcapNG writes the observations that kept their Frame as a pcapng
// file with one interface block per point. Observations without a Frame are
// skipped; one of a point not in points is an error. A point's interface
// block takes the link type of its observations' Link; observations of one
// point with different Links are an error. Wireshark and tshark read the
// result; ReadPcapNG reads it back into Observations.
func WritePcapNG(w io.Writer, points []topology.Point, obs []Observation) error {
	if len(points) == 0 {
		return errors.New("write pcapng: no capture points")
	}
	links, err := pointLinks(obs)
	if err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	section := pcapgo.NgSectionInfo{Application: "cnitrace", OS: runtime.GOOS, Comment: sectionComment(points)}
	nw, err := pcapgo.NewNgWriterInterface(w, ngInterface(points[0], links[points[0].ID]), pcapgo.NgWriterOptions{SectionInfo: section})
	if err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	ifaces := map[string]int{points[0].ID: 0}
	for _, p := range points[1:] {
		if _, dup := ifaces[p.ID]; dup {
			return fmt.Errorf("write pcapng: capture point ID %q used twice", p.ID)
		}
		if ifaces[p.ID], err = nw.AddInterface(ngInterface(p, links[p.ID])); err != nil {
			return fmt.Errorf("write pcapng: %w", err)
		}
	}
	for i, o := range obs {
		if o.Frame == nil {
			continue
		}
		id, ok := ifaces[o.Point]
		if !ok {
			return fmt.Errorf("write pcapng: observation %d is of unknown capture point %q", i, o.Point)
		}
		ci := gopacket.CaptureInfo{Timestamp: o.At, CaptureLength: len(o.Frame), Length: len(o.Frame), InterfaceIndex: id}
		opts := pcapgo.NgPacketOptions{Comments: []string{packetComment(o)}, Flags: &pcapgo.NgEpbFlags{Direction: epbDirection(o.Dir)}}
		if err := nw.WritePacketWithOptions(ci, o.Frame, opts); err != nil {
			return fmt.Errorf("write pcapng: observation %d: %w", i, err)
		}
	}
	if err := nw.Flush(); err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	return nil
}

// pointLinks returns the link type of every point that has observations
// with a Frame.
func pointLinks(obs []Observation) (map[string]LinkType, error) {
	links := map[string]LinkType{}
	for i, o := range obs {
		if o.Frame == nil {
			continue
		}
		if l, ok := links[o.Point]; ok && l != o.Link {
			return nil, fmt.Errorf("observation %d of capture point %q has link type %s, earlier ones %s", i, o.Point, o.Link, l)
		}
		links[o.Point] = o.Link
	}
	return links, nil
}

func ngInterface(p topology.Point, link LinkType) pcapgo.NgInterface {
	lt := layers.LinkTypeEthernet
	if link == LinkRawIP {
		lt = layers.LinkTypeRaw
	}
	return pcapgo.NgInterface{
		Name:                p.Name(),
		Description:         p.ID,
		Comment:             fmt.Sprintf("cnitrace point %s: kind=%s request_dir=%s", p.ID, p.Kind, p.RequestDir),
		OS:                  runtime.GOOS,
		LinkType:            lt,
		TimestampResolution: 9,
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

// sectionComment records the tunnel ports, so ReadPcapNG decodes VXLAN on
// the same ports the capture matched.
func sectionComment(points []topology.Point) string {
	ports := []uint16{PortVXLAN, PortVXLANLinux}
	for _, p := range points {
		if p.TunnelPort > 0 && p.TunnelPort <= 0xffff {
			ports = append(ports, uint16(p.TunnelPort))
		}
	}
	slices.Sort(ports)
	list := make([]string, 0, len(ports))
	for _, p := range slices.Compact(ports) {
		list = append(list, strconv.Itoa(int(p)))
	}
	return sectionPrefix + " " + tunnelPortsKey + strings.Join(list, ",")
}

func packetComment(o Observation) string {
	return fmt.Sprintf("%s %s %s%s", o.Point, o.Dir, stampCommentKey, o.Stamp)
}

func epbDirection(d topology.Dir) pcapgo.NgEpbFlag {
	switch d {
	case topology.TX:
		return pcapgo.NgEpbFlagDirectionOutbound
	case topology.RX:
		return pcapgo.NgEpbFlagDirectionInbound
	}
	return pcapgo.NgEpbFlagDirectionUnknown
}

// ReadPcapNG reads a pcapng file written by WritePcapNG back into
// Observations, with their Frames. The point is the interface's description
// (its name when there is none); direction and stamp source come from the
// packet comment, the direction from the packet flags when there is no
// comment. Each interface's packets are decoded for its link type
// (Ethernet, or raw IP for Raw, IPv4 and IPv6). A packet that does not
// decode is an error.
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

func packetMeta(iface pcapgo.NgInterface, ci gopacket.CaptureInfo, opts pcapgo.NgPacketOptions) Meta {
	m := Meta{Point: iface.Description, At: ci.Timestamp}
	if m.Point == "" {
		m.Point = iface.Name
	}
	if opts.Flags != nil {
		switch opts.Flags.Direction {
		case pcapgo.NgEpbFlagDirectionOutbound:
			m.Dir = topology.TX
		case pcapgo.NgEpbFlagDirectionInbound:
			m.Dir = topology.RX
		}
	}
	for _, c := range opts.Comments {
		f := strings.Fields(c)
		if len(f) != 3 || !strings.HasPrefix(f[2], stampCommentKey) {
			continue
		}
		if d := topology.Dir(f[1]); d == topology.TX || d == topology.RX {
			m.Dir = d
		}
		m.Stamp = StampSource(strings.TrimPrefix(f[2], stampCommentKey))
		break
	}
	return m
}

// parseTunnelPorts reads the ports from a section comment of WritePcapNG;
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
