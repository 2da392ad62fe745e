package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/cnitrace/cnitrace/topology"
)

// The pcapng layout cnitrace writes (docs/capture.md) and ReadPcapNG reads:
//   - a section header, application "cnitrace", whose comment lists the
//     tunnel ports: "cnitrace tunnel_ports=4789,8472"
//   - one interface block per point, in point order: name "IFNAME (NETNS)"
//     ("eth0 (net:[4026532301])"), description "point=p0 kind=pod
//     ifindex=2 netns=net:[4026532301] request_dir=tx" (and tunnel_port=N
//     for an overlay device), link type Ethernet or, for a raw-IP point,
//     Raw (101), nanosecond timestamps (if_tsresol 9)
//   - one enhanced packet block per packet: its frame, its kernel
//     timestamp, the direction flag, and a comment "LABEL point=p0
//     request dir=tx stamp=skb", LABEL being the caller's ("probe seq=3
//     run=00c0ffee00c0ffee" in cnitrace trace; capture does not read the
//     probe token)
//   - at the end, one interface statistics block per point with its
//     ring's counters (PointStats): isb_ifrecv the packets the filter
//     accepted, isb_ifdrop those the ring dropped, isb_usrdeliv the
//     packets written to the file, start and end time, and a comment with
//     all the counters.
//
// Files of earlier versions (description the bare point ID, comment
// "p2 rx stamp=skb") are read too.
const (
	sectionPrefix  = "cnitrace"
	tunnelPortsKey = "tunnel_ports="
	pointKey       = "point="
	dirKey         = "dir="
	stampKey       = "stamp="
)

// writeBufferSize is the buffer between the pcapng encoder and the file:
// one write per 64 KiB, some 400 packets.
const writeBufferSize = 64 << 10

// PcapNGWriter encodes a pcapng file in the layout above: the section and
// interface blocks when it is created, then packets as they are written,
// then statistics. It buffers what it writes: call Flush at the end. It is
// not safe for concurrent use; PcapNGStream feeds one from a goroutine of
// its own.
type PcapNGWriter struct {
	bw      *bufio.Writer
	nw      *pcapgo.NgWriter
	ifaces  []Interface
	index   map[string]int // point ID -> interface ID
	written []uint64       // packets written, per interface
	block   []byte         // scratch for a packet block
}

// NewPcapNGWriter writes the section header and one interface block per
// point to w, in the order given, and returns a writer for their packets.
// It is an error to give no interface, or a point ID twice.
func NewPcapNGWriter(w io.Writer, ifaces []Interface) (*PcapNGWriter, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("write pcapng: no capture points")
	}
	pw := &PcapNGWriter{
		// pcapgo's NgWriter takes this bufio.Writer as its own (bufio
		// does not wrap a large enough one twice), so the statistics
		// blocks written to it directly stay in order.
		bw:      bufio.NewWriterSize(w, writeBufferSize),
		ifaces:  slices.Clone(ifaces),
		index:   make(map[string]int, len(ifaces)),
		written: make([]uint64, len(ifaces)),
	}
	points := make([]topology.Point, 0, len(ifaces))
	for i, f := range ifaces {
		if _, dup := pw.index[f.Point.ID]; dup {
			return nil, fmt.Errorf("write pcapng: capture point ID %q used twice", f.Point.ID)
		}
		pw.index[f.Point.ID] = i
		points = append(points, f.Point)
	}
	section := pcapgo.NgSectionInfo{Application: "cnitrace", OS: runtime.GOOS, Comment: sectionComment(points)}
	var err error
	pw.nw, err = pcapgo.NewNgWriterInterface(pw.bw, ngInterface(ifaces[0]), pcapgo.NgWriterOptions{SectionInfo: section})
	if err != nil {
		return nil, fmt.Errorf("write pcapng: %w", err)
	}
	for _, f := range ifaces[1:] {
		if _, err := pw.nw.AddInterface(ngInterface(f)); err != nil {
			return nil, fmt.Errorf("write pcapng: %w", err)
		}
	}
	return pw, nil
}

// WritePacket writes o, which must carry its Frame (Config.KeepFrames), as
// an enhanced packet block of its point's interface. label opens the
// packet's comment (what the caller knows of the packet, such as its probe
// token); the writer adds the point, request or reply, the direction and
// the stamp source.
func (w *PcapNGWriter) WritePacket(o Observation, label string) error {
	id, ok := w.index[o.Point]
	switch {
	case !ok:
		return fmt.Errorf("write pcapng: observation of unknown capture point %q", o.Point)
	case o.Frame == nil:
		return fmt.Errorf("write pcapng: observation at %s has no frame (capture.Config.KeepFrames is off)", o.Point)
	case o.Link != w.ifaces[id].Link:
		return fmt.Errorf("write pcapng: observation at %s has link type %s, its interface %s", o.Point, o.Link, w.ifaces[id].Link)
	}
	if _, err := w.bw.Write(w.packetBlock(id, o, label)); err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	w.written[id]++
	return nil
}

// packetBlock encodes o as an enhanced packet block of interface id
// (pcapng section 4.3), in w's scratch buffer: the frame, its timestamp in
// ns, the comment "LABEL point=p0 request dir=tx stamp=skb" and the
// direction flag. (pcapgo's NgWriter would allocate five times per packet
// and format the block in small writes.)
func (w *PcapNGWriter) packetBlock(id int, o Observation, label string) []byte {
	le := binary.LittleEndian
	b := append(w.block[:0], make([]byte, epbHeaderLength)...)
	le.PutUint32(b[0:], blockTypeEPB)
	le.PutUint32(b[8:], uint32(id))
	putStamp(b[12:], o.At)
	le.PutUint32(b[20:], uint32(len(o.Frame)))
	le.PutUint32(b[24:], uint32(len(o.Frame)))
	b = append(b, o.Frame...)
	b = append(b, make([]byte, (4-len(o.Frame)%4)%4)...)

	// opt_comment, its length filled in below.
	b = le.AppendUint16(b, optComment)
	at := len(b)
	b = le.AppendUint16(b, 0)
	if label != "" {
		b = append(append(b, label...), ' ')
	}
	b = append(append(b, pointKey...), o.Point...)
	switch {
	case o.IsRequest():
		b = append(b, " request"...)
	case o.IsReply():
		b = append(b, " reply"...)
	case o.Proto != ProtoICMP:
		b = append(append(b, " proto="...), o.Proto.String()...)
	default:
		b = strconv.AppendUint(append(b, " icmp_type="...), uint64(o.ICMPType), 10)
	}
	b = append(append(append(b, ' '), dirKey...), o.Dir...)
	b = append(append(append(b, ' '), stampKey...), o.Stamp...)
	n := len(b) - at - 2
	le.PutUint16(b[at:], uint16(min(n, 0xffff)))
	b = b[:at+2+min(n, 0xffff)]
	b = append(b, make([]byte, (4-len(b)%4)%4)...)

	b = le.AppendUint16(b, optEPBFlags)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, uint32(epbDirection(o.Dir)))
	b = append(b, 0, 0, 0, 0) // opt_endofopt
	b = le.AppendUint32(b, uint32(len(b)+4))
	le.PutUint32(b[4:], uint32(len(b)))
	w.block = b
	return b
}

// ProbeLabel is the label of a probe's packet, as cnitrace trace gives it
// to WritePacket and PcapNGStream once it has read the token from the
// payload: "probe seq=3 run=00c0ffee00c0ffee" (the run id in 16 hex
// digits).
func ProbeLabel(runID uint64, seq uint32) string {
	b := make([]byte, 0, 48)
	b = strconv.AppendUint(append(b, "probe seq="...), uint64(seq), 10)
	b = append(b, " run="...)
	hex := strconv.FormatUint(runID, 16)
	for range 16 - len(hex) {
		b = append(b, '0')
	}
	return string(append(b, hex...))
}

// Flush writes what is buffered to the underlying writer.
func (w *PcapNGWriter) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	return nil
}

// WriteStats writes an interface statistics block for every interface
// stats has counters of, in interface order: the ring's counters, the
// packets written to this file, left (per point ID) the packets the
// caller left out of it, and the capture's start and end. A point of
// stats that has no interface is an error. It does not flush.
func (w *PcapNGWriter) WriteStats(stats []PointStats, left map[string]uint64, start, end time.Time) error {
	byID := make([]*PointStats, len(w.ifaces))
	for i := range stats {
		id, ok := w.index[stats[i].Point]
		if !ok {
			return fmt.Errorf("write pcapng: statistics of unknown capture point %q", stats[i].Point)
		}
		byID[id] = &stats[i]
	}
	for id, st := range byID {
		if st == nil {
			continue
		}
		isb := interfaceStats{
			iface: uint32(id), start: start, end: end,
			recv: st.Packets, drop: st.Drops, delivered: w.written[id],
			comment: fmt.Sprintf("cnitrace point=%s packets=%d drops=%d freezes=%d undecodable=%d written=%d left_out=%d",
				st.Point, st.Packets, st.Drops, st.Freezes, st.Undecodable, w.written[id], left[st.Point]),
		}
		if _, err := w.bw.Write(isb.block()); err != nil {
			return fmt.Errorf("write pcapng: %w", err)
		}
	}
	return nil
}

// interfaceStats is one interface statistics block. pcapgo's NgWriter
// writes isb_ifrecv and isb_ifdrop but neither isb_usrdeliv nor a comment,
// so cnitrace encodes the block itself (pcapng, section 4.6), in the
// section's byte order (pcapgo writes little-endian) and with the
// interface's resolution (ns), as it does packet blocks.
type interfaceStats struct {
	iface                 uint32
	start, end            time.Time
	recv, drop, delivered uint64
	comment               string
}

// pcapng block types, lengths and option codes (pcapng, sections 4.3
// and 4.6).
const (
	blockTypeEPB    = 6
	blockTypeISB    = 5
	epbHeaderLength = 8 + 20 // type, length; interface ID, timestamp, captured and original length
	isbHeaderLength = 8 + 12 // type, length; interface ID, timestamp

	optEndOfOpt  = 0
	optComment   = 1
	optEPBFlags  = 2
	isbStartTime = 2
	isbEndTime   = 3
	isbIfRecv    = 4
	isbIfDrop    = 5
	isbUsrDeliv  = 8
)

func (s interfaceStats) block() []byte {
	le := binary.LittleEndian
	b := make([]byte, isbHeaderLength, 128+len(s.comment))
	le.PutUint32(b[0:], blockTypeISB)
	le.PutUint32(b[8:], s.iface)
	putStamp(b[12:], s.end)
	b = appendOption(b, optComment, []byte(s.comment))
	if !s.start.IsZero() {
		b = appendOption(b, isbStartTime, putStamp(make([]byte, 8), s.start))
	}
	if !s.end.IsZero() {
		b = appendOption(b, isbEndTime, putStamp(make([]byte, 8), s.end))
	}
	b = appendOption(b, isbIfRecv, le.AppendUint64(nil, s.recv))
	b = appendOption(b, isbIfDrop, le.AppendUint64(nil, s.drop))
	b = appendOption(b, isbUsrDeliv, le.AppendUint64(nil, s.delivered))
	b = appendOption(b, optEndOfOpt, nil)
	b = le.AppendUint32(b, uint32(len(b)+4)) // trailing block length
	le.PutUint32(b[4:], uint32(len(b)))
	return b
}

// putStamp puts t in ns as pcapng has timestamps: the upper 32 bits, then
// the lower 32 bits, each in the section's byte order. A zero t is 0.
func putStamp(b []byte, t time.Time) []byte {
	var ns uint64
	if !t.IsZero() {
		ns = uint64(t.UnixNano())
	}
	binary.LittleEndian.PutUint32(b[0:], uint32(ns>>32))
	binary.LittleEndian.PutUint32(b[4:], uint32(ns))
	return b[:8]
}

// appendOption appends a pcapng option, its value padded to 32 bits.
func appendOption(b []byte, code uint16, value []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	b = append(b, value...)
	return append(b, make([]byte, (4-len(value)%4)%4)...)
}

// WritePcapNG writes the observations that kept their Frame as a pcapng
// file with one interface block per point, in the layout above, without
// labels or statistics. Observations without a Frame are skipped; one of
// a point not in points is an error. A point's interface block takes the
// link type of its observations' Link; observations of one point with
// different Links are an error. Wireshark and tshark read the result;
// ReadPcapNG reads it back into Observations. To write packets as they
// are captured, use PcapNGStream.
func WritePcapNG(w io.Writer, points []topology.Point, obs []Observation) error {
	links, err := pointLinks(obs)
	if err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	ifaces := make([]Interface, 0, len(points))
	for _, p := range points {
		ifaces = append(ifaces, Interface{Point: p, Link: links[p.ID]})
	}
	pw, err := NewPcapNGWriter(w, ifaces)
	if err != nil {
		return err
	}
	for i, o := range obs {
		if o.Frame == nil {
			continue
		}
		if err := pw.WritePacket(o, ""); err != nil {
			return fmt.Errorf("observation %d: %w", i, err)
		}
	}
	return pw.Flush()
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

// InterfaceName is how a point's interface block names it: "eth0
// (net:[4026532301])", the interface inside its netns.
func InterfaceName(p topology.Point) string { return p.Interface + " (" + p.NetNS + ")" }

// InterfaceDescription is a point's interface block description: "point=p0
// kind=pod ifindex=2 netns=net:[4026532301] request_dir=tx", and
// tunnel_port=N for an overlay device.
func InterfaceDescription(p topology.Point) string {
	d := fmt.Sprintf("%s%s kind=%s ifindex=%d netns=%s request_dir=%s", pointKey, p.ID, p.Kind, p.Ifindex, p.NetNS, p.RequestDir)
	if p.TunnelPort > 0 {
		d += " tunnel_port=" + strconv.Itoa(p.TunnelPort)
	}
	return d
}

func ngInterface(f Interface) pcapgo.NgInterface {
	lt := layers.LinkTypeEthernet
	if f.Link == LinkRawIP {
		lt = layers.LinkTypeRaw
	}
	return pcapgo.NgInterface{
		Name:        InterfaceName(f.Point),
		Description: InterfaceDescription(f.Point),
		// The interfaces are Linux's (AF_PACKET), wherever the file is
		// written; the section header names the writer's OS.
		OS:                  "linux",
		LinkType:            lt,
		TimestampResolution: 9,
	}
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

func epbDirection(d topology.Dir) pcapgo.NgEpbFlag {
	switch d {
	case topology.TX:
		return pcapgo.NgEpbFlagDirectionOutbound
	case topology.RX:
		return pcapgo.NgEpbFlagDirectionInbound
	}
	return pcapgo.NgEpbFlagDirectionUnknown
}
