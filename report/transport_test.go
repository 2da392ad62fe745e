package report

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// asTCP turns a synthetic ICMP run's observations into those of TCP SYN
// probes to port: requests become SYNs carrying the token, replies
// SYN-ACKs without one (RSTs for the probes in rst), with the addresses
// and ports as NAT leaves them at each point (dst and port from
// translateAt on, by the backend function).
func asTCP(obs []capture.Observation, port uint16, rst map[uint32]bool, at func(o capture.Observation, seq uint32) (netip.Addr, uint16)) []capture.Observation {
	pod := netip.MustParseAddr("10.244.1.2")
	out := make([]capture.Observation, 0, len(obs))
	for _, o := range obs {
		seq := seqOf(o)
		sport := 40000 + uint16(seq%64)
		dst, dport := at(o, seq)
		t := capture.Observation{Point: o.Point, At: o.At, Stamp: o.Stamp, Dir: o.Dir, Proto: capture.ProtoTCP}
		if o.IsRequest() {
			t.TCPFlags, t.TCPSeq, t.Token = capture.TCPFlagSYN, isn(seq), o.Payload[:capture.TokenLen]
			t.Src, t.Dst, t.SrcPort, t.DstPort = pod, dst, sport, dport
		} else {
			t.TCPFlags, t.TCPAck = capture.TCPFlagSYN|capture.TCPFlagACK, isn(seq)+1
			if rst[seq] {
				t.TCPFlags = capture.TCPFlagRST | capture.TCPFlagACK
			}
			t.Src, t.Dst, t.SrcPort, t.DstPort = dst, pod, dport, sport
		}
		out = append(out, t)
	}
	return out
}

// asUDP turns them into UDP probes: DNS queries and answers with dns set
// (to port 53), else datagrams a UDP echo returns as they came.
func asUDP(obs []capture.Observation, port uint16, dns bool) []capture.Observation {
	pod, target := netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.244.2.2")
	out := make([]capture.Observation, 0, len(obs))
	for _, o := range obs {
		u := capture.Observation{Point: o.Point, At: o.At, Stamp: o.Stamp, Dir: o.Dir, Proto: capture.ProtoUDP,
			Token: o.Payload[:capture.TokenLen], DNS: dns}
		sport := uint16(43210)
		if o.IsRequest() {
			u.Src, u.Dst, u.SrcPort, u.DstPort = pod, target, sport, port
		} else {
			u.Src, u.Dst, u.SrcPort, u.DstPort, u.DNSResponse = target, pod, port, sport, dns
		}
		out = append(out, u)
	}
	return out
}

// withReplies sets what answered each answered probe.
func withReplies(res *probe.Result, kind func(seq uint32) probe.Reply) {
	for i := range res.Probes {
		if res.Probes[i].Answered() {
			res.Probes[i].Reply = kind(res.Probes[i].Seq)
		}
	}
}

func replayProto(t *testing.T, path *topology.Path, res *probe.Result, obs []capture.Observation, proto probe.Proto, port int) *Result {
	t.Helper()
	acc, err := NewAccumulator(path, []ProbeSource{{RunID: res.RunID, Proto: proto, Port: port}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		acc.Add(o)
	}
	r, err := acc.Result(Recorded{Probes: []*probe.Result{res}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tcpServiceResult is the TCP golden scenario: SYN probes to a ClusterIP
// port 80 that the node's DNAT sends, from the bridge on, to two
// endpoints' port 8080 (even probes to one, odd to the other), one probe
// lost in the network, one answered by a RST.
func tcpServiceResult(t *testing.T) *Result {
	t.Helper()
	vip := netip.MustParseAddr("10.96.0.10")
	eps := []netip.Addr{netip.MustParseAddr("10.244.2.2"), netip.MustParseAddr("10.244.2.3")}
	path := flannelPath()
	path.Target, path.Translated = vip, eps[0]
	rn := run{path: path, n: 12, delays: designDelays(), lostIn: map[int]int{7: segNetwork}}
	res, obs := rn.build()
	withReplies(res, func(seq uint32) probe.Reply {
		if seq == 4 {
			return probe.Reset
		}
		return probe.SynAck
	})
	tcp := asTCP(obs, 80, map[uint32]bool{4: true}, func(o capture.Observation, seq uint32) (netip.Addr, uint16) {
		if o.Point == "p0" || o.Point == "p1" {
			return vip, 80
		}
		return eps[seq%2], 8080
	})
	r := replayProto(t, path, res, tcp, probe.TCP, 80)
	r.Run = &Run{Command: []string{"cnitrace", "trace", "--netns", "/run/netns/web-0", "--to", "10.96.0.10", "--proto", "tcp", "--port", "80", "--count", "12"},
		Version: "v0.9.0 4f1c2ab39d07", Kernel: "6.12.48+deb13-amd64", Node: "node-a",
		Started: runStart.UTC().Add(-3 * time.Millisecond), Ended: runStart.UTC().Add(1_130 * time.Millisecond)}
	return r
}

// dnsResult is the UDP golden scenario: DNS probes to a pod's port 53,
// one lost on the way back.
func dnsResult(t *testing.T) *Result {
	t.Helper()
	rn := run{n: 10, delays: designDelays(), lostIn: map[int]int{3: segVXLANBridge}}
	res, obs := rn.build()
	withReplies(res, func(uint32) probe.Reply { return probe.DNSReply })
	r := replayProto(t, flannelPath(), res, asUDP(obs, 53, true), probe.UDP, 53)
	r.Run = &Run{Command: []string{"cnitrace", "trace", "--netns", "/run/netns/web-0", "--to", "10.244.2.2", "--proto", "udp", "--port", "53", "--count", "10"},
		Version: "v0.9.0 4f1c2ab39d07", Kernel: "6.12.48+deb13-amd64", Node: "node-a",
		Started: runStart.UTC().Add(-3 * time.Millisecond), Ended: runStart.UTC().Add(1_110 * time.Millisecond)}
	return r
}

func TestTransportGolden(t *testing.T) {
	for _, sc := range []struct {
		name string
		r    func(*testing.T) *Result
	}{{"tcp-service", tcpServiceResult}, {"udp-dns", dnsResult}} {
		for _, f := range Formats() {
			t.Run(sc.name+"/"+f.String(), func(t *testing.T) {
				var b bytes.Buffer
				if err := Render(&b, sc.r(t), f); err != nil {
					t.Fatal(err)
				}
				golden(t, "../testdata/report-"+sc.name+".golden"+f.Ext(), b.Bytes())
				if f != FormatJSON {
					return
				}
				// Rendering again from the JSON gives the same bytes, in every format.
				back, err := Decode(bytes.NewReader(b.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range Formats() {
					var want, got bytes.Buffer
					_ = Render(&want, sc.r(t), g)
					if err := Render(&got, back, g); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got.Bytes(), want.Bytes()) {
						t.Errorf("%s rendered from the JSON differs:\n%s\nwant:\n%s", g, got.Bytes(), want.Bytes())
					}
				}
			})
		}
	}
}

func TestTransportTCPThroughService(t *testing.T) {
	r := tcpServiceResult(t)
	if r.Proto != "tcp" || r.Port != 80 {
		t.Errorf("got proto %q port %d, want tcp 80", r.Proto, r.Port)
	}
	if want := map[string]int{"syn-ack": 10, "rst": 1}; !mapsEqual(r.Replies, want) {
		t.Errorf("got replies %v, want %v", r.Replies, want)
	}
	if r.Probes.Ignored != 0 {
		t.Errorf("got %d observations ignored, want none: every SYN-ACK and RST tied to its SYN", r.Probes.Ignored)
	}
	for _, s := range r.Segments {
		want := 11
		if s.Direction == DirRequest {
			want = 12
		}
		if s.Class == ClassNetwork {
			want = 11
		}
		if s.Seen != want {
			t.Errorf("segment %s->%s %s: seen %d, want %d", s.From, s.To, s.Direction, s.Seen, want)
		}
	}
	want := &Backends{At: "p2", Seen: []Backend{{"10.244.2.2", 8080, 6}, {"10.244.2.3", 8080, 6}}}
	if r.Backends == nil || r.Backends.At != want.At || !slices.Equal(r.Backends.Seen, want.Seen) {
		t.Errorf("got backends %+v, want %+v", r.Backends, want)
	}
	if !slices.Contains(r.Measures, MeasuresTCP) {
		t.Errorf("got measures %q, want the TCP one", r.Measures)
	}
	var b bytes.Buffer
	_ = Render(&b, r, FormatText)
	for _, s := range []string{"probes: tcp to port 80, answered by 10 syn-ack, 1 rst", "backends: after the DNAT, at p2 (cni0@" + hostNS + "): 10.244.2.2:8080 6 probes, 10.244.2.3:8080 6 probes"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, b.String())
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A UDP echo returns the same datagram: the direction tells the reply;
// unreachables are replies too, and bring the rate-limit note.
func TestTransportUDPEchoAndUnreachable(t *testing.T) {
	rn := run{n: 6, delays: designDelays()}
	res, obs := rn.build()
	withReplies(res, func(seq uint32) probe.Reply {
		if seq >= 4 {
			return probe.Unreachable
		}
		return probe.UDPReply
	})
	u := asUDP(obs, 7, false)
	for i := range u {
		if seq := seqOf(obs[i]); seq >= 4 && obs[i].IsReply() {
			u[i].Proto, u[i].ICMPType, u[i].ICMPCode = capture.ProtoUnreachable, 3, 3
			u[i].SrcPort, u[i].DstPort = 43210, 7 // the quoted probe's
		}
	}
	r := replayProto(t, flannelPath(), res, u, probe.UDP, 7)
	if r.Probes.Ignored != 0 {
		t.Errorf("got %d ignored, want 0", r.Probes.Ignored)
	}
	for _, s := range r.Segments {
		if s.Seen != 6 {
			t.Errorf("segment %s->%s %s: seen %d, want 6", s.From, s.To, s.Direction, s.Seen)
		}
	}
	if want := map[string]int{"udp-reply": 4, "unreachable": 2}; !mapsEqual(r.Replies, want) {
		t.Errorf("got replies %v, want %v", r.Replies, want)
	}
	if !slices.Equal(r.Measures, []string{MeasuresUDP, MeasuresUnreachable}) {
		t.Errorf("got measures %q", r.Measures)
	}
	if r.Backends != nil {
		t.Errorf("got backends %+v without a DNAT", r.Backends)
	}
}

// An ICMP run that lost every probe, with no DNAT found, says Services do
// not carry ICMP; one that got answers, or went through a DNAT, does not.
func TestTransportICMPServiceHint(t *testing.T) {
	all := map[int]int{0: segNetwork, 1: segNetwork, 2: segNetwork}
	none := run{n: 3, delays: designDelays(), lostIn: all}.correlate(t)
	if want := serviceICMPHint("10.244.2.2"); !strings.HasSuffix(none.Verdict.Text, "; "+want) {
		t.Errorf("got verdict %q, want it to end in %q", none.Verdict.Text, want)
	}
	if r := (run{n: 3, delays: designDelays(), lostIn: map[int]int{0: segNetwork}}).correlate(t); strings.Contains(r.Verdict.Text, "Service") {
		t.Errorf("got verdict %q for a run with answers", r.Verdict.Text)
	}
	if r := rewritten(t); r.Backends == nil || r.Proto != "" || r.Replies != nil || r.Measures != nil {
		t.Errorf("ICMP through a DNAT: backends %+v, proto %q, replies %v, measures %q; want backends only", r.Backends, r.Proto, r.Replies, r.Measures)
	}
}

// TCP replies on a tuple no SYN was seen on, at any point, are ignored,
// never placed: nothing else ties them to a probe.
func TestTransportTCPAnswerWithoutSYN(t *testing.T) {
	path := flannelPath()
	res, obs := run{path: path, n: 2, delays: designDelays()}.build()
	tcp := asTCP(obs, 80, nil, func(capture.Observation, uint32) (netip.Addr, uint16) { return path.Target, 80 })
	var kept []capture.Observation
	for _, o := range tcp {
		if !(o.TCPSeq == isn(1) && o.TCPFlags == capture.TCPFlagSYN) {
			kept = append(kept, o)
		}
	}
	r := replayProto(t, path, res, kept, probe.TCP, 80)
	if r.Probes.Ignored != 5 {
		t.Errorf("got %d ignored, want the 5 SYN-ACKs of probe 1", r.Probes.Ignored)
	}
}

// The rings are read apart: the bridge's answers (already un-DNATed where
// the SYN was seen translated) may come in before the veth's and the pod's
// SYNs. Every answer is still placed.
func TestTransportTCPRingsOutOfOrder(t *testing.T) {
	path := flannelPath()
	vip := netip.MustParseAddr("10.96.0.10")
	path.Target, path.Translated = vip, netip.MustParseAddr("10.244.2.2")
	res, obs := run{path: path, n: 12, delays: designDelays()}.build()
	withReplies(res, func(uint32) probe.Reply { return probe.SynAck })
	tcp := asTCP(obs, 80, nil, func(o capture.Observation, seq uint32) (netip.Addr, uint16) {
		if o.Point == "p0" || o.Point == "p1" || (o.Point == "p2" && !o.IsRequest()) {
			return vip, 80 // the reply at the bridge's tap is un-DNATed already
		}
		return netip.MustParseAddr("10.244.2.2"), 8080
	})
	byPoint := map[string]int{"p2": 0, "p3": 1, "p4": 2, "p1": 3, "p0": 4} // p2's ring read first, the pod's last
	slices.SortStableFunc(tcp, func(x, y capture.Observation) int { return byPoint[x.Point] - byPoint[y.Point] })
	got := replayProto(t, path, res, tcp, probe.TCP, 80)
	if got.Probes.Ignored != 0 {
		t.Errorf("got %d ignored, want none", got.Probes.Ignored)
	}
	for _, s := range got.Segments {
		if s.Seen != 12 {
			t.Errorf("segment %s->%s %s: seen %d, want 12", s.From, s.To, s.Direction, s.Seen)
		}
	}
}

// DNS probes through a Service's DNAT all leave one socket: the report
// names their one backend and says why it is one.
func TestTransportDNSThroughServiceIsOneFlow(t *testing.T) {
	vip, ep := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("10.244.2.3")
	path := flannelPath()
	path.Target, path.Translated = vip, ep
	rn := run{path: path, n: 8, delays: designDelays()}
	res, obs := rn.build()
	withReplies(res, func(uint32) probe.Reply { return probe.DNSReply })
	u := asUDP(obs, 53, true)
	for i := range u {
		far, request := u[i].Point != "p0" && u[i].Point != "p1", obs[i].IsRequest()
		switch {
		case request && far:
			u[i].Dst = ep
		case request:
			u[i].Dst = vip
		case far:
			u[i].Src = ep
		default:
			u[i].Src = vip
		}
	}
	r := replayProto(t, path, res, u, probe.UDP, 53)
	want := &Backends{At: "p2", Seen: []Backend{{"10.244.2.3", 53, 8}}}
	if r.Backends == nil || r.Backends.At != want.At || !slices.Equal(r.Backends.Seen, want.Seen) {
		t.Errorf("got backends %+v, want %+v", r.Backends, want)
	}
	if !slices.Equal(r.Measures, []string{MeasuresDNS, MeasuresOneFlow}) {
		t.Errorf("got measures %q, want the DNS one and the one-flow one", r.Measures)
	}
	var b bytes.Buffer
	_ = Render(&b, r, FormatText)
	if !strings.Contains(b.String(), "measures: one UDP flow") {
		t.Errorf("text report lacks the one-flow line:\n%s", b.String())
	}
}
