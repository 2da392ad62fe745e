package capture

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

var update = flag.Bool("update", false, "rewrite the hand-built testdata/*.pcapng files (TestHandBuiltRecordings)")

// handBuilt is a pcapng fixture made of hand-built frames, for the
// encapsulations this kernel cannot build (no geneve or ipip modules):
// probeCount probes, each seen at two points on request and reply. Point 0
// sees the probe plain, point 1 encapsulated.
type handBuilt struct {
	file   string
	points [2]topology.Point
	links  [2]LinkType
	tunnel string                  // at point 1
	under  [2]netip.Addr           // point 1's outer addresses, request direction
	overl  [2]netip.Addr           // the probe's addresses, request direction
	wrap   func(inner stack) stack // point 1's encapsulation of a request
	unwrap func(inner stack) stack // of a reply
}

func handBuiltCases() []handBuilt {
	ns := "net:[4026532301]"
	uplink := topology.Point{ID: "p1", Interface: "eth0", NetNS: ns, Kind: topology.KindUplink, RequestDir: topology.TX}
	return []handBuilt{{
		file: "../testdata/geneve-6081.pcapng",
		points: [2]topology.Point{
			{ID: "p0", Interface: "genev_sys_6081", NetNS: ns, Kind: topology.KindGeneve, RequestDir: topology.TX, TunnelPort: 6081}, uplink},
		links: [2]LinkType{LinkEthernet, LinkEthernet}, tunnel: TunnelGeneve,
		under: [2]netip.Addr{underA, underB}, overl: [2]netip.Addr{overlA, overlB},
		wrap:   func(s stack) stack { return overGeneve(6081, 8, underA, underB, s) },
		unwrap: func(s stack) stack { return overGeneve(6081, 8, underB, underA, s) },
	}, {
		file: "../testdata/ipip.pcapng",
		points: [2]topology.Point{
			{ID: "p0", Interface: "tunl0", NetNS: ns, Kind: topology.KindIPIP, RequestDir: topology.TX}, uplink},
		links: [2]LinkType{LinkRawIP, LinkEthernet}, tunnel: TunnelIPIP,
		under: [2]netip.Addr{underA, underB}, overl: [2]netip.Addr{overlA, overlB},
		wrap: overIPIP,
		unwrap: func(s stack) stack {
			return append(stack{ipLayer(4, underB, underA)}, s...)
		},
	}, {
		file: "../testdata/ipv6-vxlan.pcapng",
		points: [2]topology.Point{
			{ID: "p0", Interface: "vxlan.calico", NetNS: ns, Kind: topology.KindVXLAN, RequestDir: topology.TX, TunnelPort: 4789}, uplink},
		links: [2]LinkType{LinkEthernet, LinkEthernet}, tunnel: TunnelVXLAN,
		under: [2]netip.Addr{underA, underB}, overl: [2]netip.Addr{overl6A, overl6B},
		wrap:   func(s stack) stack { return overVXLAN(4789, underA, underB, s) },
		unwrap: func(s stack) stack { return overVXLAN(4789, underB, underA, s) },
	}}
}

func handBuiltRecordings() []string {
	var files []string
	for _, h := range handBuiltCases() {
		files = append(files, h.file)
	}
	return files
}

const handBuiltRunID = 0x5eed

// observations lays out what the two points see of probeCount probes:
// request p0 TX, p1 TX; reply p1 RX, p0 RX, 10 us apart.
func (h handBuilt) observations(t *testing.T) []Observation {
	t.Helper()
	at := time.Unix(1700000000, 0).UTC()
	var obs []Observation
	add := func(pt int, dir topology.Dir, s stack) {
		at = at.Add(10 * time.Microsecond)
		obs = append(obs, Observation{Point: h.points[pt].ID, At: at, Stamp: StampCopy, Dir: dir, Frame: onLink(t, h.links[pt], s), Link: h.links[pt]})
	}
	for seq := range probeCount {
		data := probe.Payload{RunID: handBuiltRunID, Seq: uint32(seq), SentAt: at}.Marshal(56)
		reqType, repType := uint8(8), uint8(0)
		if h.overl[0].Is6() {
			reqType, repType = 128, 129
		}
		req := func() stack { return echo(reqType, h.overl[0], h.overl[1], data) }
		rep := func() stack { return echo(repType, h.overl[1], h.overl[0], data) }
		add(0, topology.TX, req())
		add(1, topology.TX, h.wrap(req()))
		add(1, topology.RX, h.unwrap(rep()))
		add(0, topology.RX, rep())
	}
	return obs
}

// write lays the fixture out as cnitrace trace writes --pcap: every
// packet decoded as the capture would and labelled with its probe token.
func (h handBuilt) write(w io.Writer, obs []Observation) error {
	pw, err := NewPcapNGWriter(w, []Interface{{Point: h.points[0], Link: h.links[0]}, {Point: h.points[1], Link: h.links[1]}})
	if err != nil {
		return err
	}
	ports := []uint16{uint16(h.points[0].TunnelPort)}
	for _, f := range obs {
		o, err := NewDecoderFor(f.Link, ports).Decode(f.Frame, Meta{Point: f.Point, At: f.At, Stamp: f.Stamp, Dir: f.Dir})
		if err != nil {
			return err
		}
		o.Frame = f.Frame
		p, err := probe.ParsePayload(o.Payload)
		if err != nil {
			return err
		}
		if err := pw.WritePacket(o, ProbeLabel(p.RunID, p.Seq)); err != nil {
			return err
		}
	}
	return pw.Flush()
}

// TestHandBuiltRecordings reads each fixture back (go test -run
// TestHandBuiltRecordings ./capture/ -update rewrites them): every frame
// passes the filter of its point's link type and decodes to the expected
// tunnel, addresses and probe token, and its comment names that token,
// its point and whether it is a request or a reply.
func TestHandBuiltRecordings(t *testing.T) {
	for _, h := range handBuiltCases() {
		t.Run(h.file, func(t *testing.T) {
			if *update {
				var buf bytes.Buffer
				if err := h.write(&buf, h.observations(t)); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(h.file, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(h.file)
			if err != nil {
				t.Fatal(err)
			}
			obs, err := ReadPcapNG(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(obs), 4*probeCount; got != want {
				t.Fatalf("got %d observations, want %d", got, want)
			}
			comments := readStream(t, b).comments
			for i, o := range obs {
				if err := h.check(t, o); err != nil {
					t.Errorf("observation %d (%s %s): %v", i, o.Point, o.Dir, err)
				}
				p, _ := probe.ParsePayload(o.Payload)
				kind := map[bool]string{true: "request", false: "reply"}[o.IsRequest()]
				want := fmt.Sprintf("probe seq=%d run=%016x point=%s %s dir=%s stamp=%s", p.Seq, p.RunID, o.Point, kind, o.Dir, o.Stamp)
				if comments[i] != want {
					t.Errorf("observation %d: comment %q, want %q", i, comments[i], want)
				}
			}
		})
	}
}

// check compares o with what its point and direction must show.
func (h handBuilt) check(t *testing.T, o Observation) error {
	pt := 0
	if o.Point == h.points[1].ID {
		pt = 1
	}
	if n, err := filterVM(t, h.links[pt], nil).Run(o.Frame); err != nil || n == 0 {
		return fmt.Errorf("the %s filter rejects the frame (%v)", h.links[pt], err)
	}
	src, dst, osrc, odst := h.overl[0], h.overl[1], h.under[0], h.under[1]
	if o.Dir == topology.RX {
		src, dst, osrc, odst = dst, src, odst, osrc
	}
	tunnel := h.tunnel
	if pt == 0 {
		tunnel, osrc, odst = "", netip.Addr{}, netip.Addr{}
	}
	if o.Link != h.links[pt] || o.Tunnel != tunnel || o.OuterSrc != osrc || o.OuterDst != odst || o.Src != src || o.Dst != dst {
		return fmt.Errorf("got %s %q %v > %v [%v > %v], want %s %q %v > %v [%v > %v]",
			o.Link, o.Tunnel, o.OuterSrc, o.OuterDst, o.Src, o.Dst, h.links[pt], tunnel, osrc, odst, src, dst)
	}
	if (o.Dir == topology.TX) != o.IsRequest() {
		return fmt.Errorf("ICMP type %d seen %s", o.ICMPType, o.Dir)
	}
	p, err := probe.ParsePayload(o.Payload)
	if err != nil || binary.BigEndian.Uint32(o.Payload) != testMagic || p.RunID != handBuiltRunID || p.Seq >= probeCount {
		return fmt.Errorf("not a probe token of run %#x: %+v (%v)", handBuiltRunID, p, err)
	}
	return nil
}
