package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// Issue 4's NAT layouts: traffic leaving the cluster masqueraded toward an
// external host, and (service_transport_privileged_test.go) a ClusterIP
// Service the nodes DNAT to the pods of the other node, as kube-proxy
// does. Probes must be matched at every point through the rewrite, and
// the report must say where the addresses changed.

// natReport is what the NAT tests read of the JSON report besides
// jsonReport.
type natReport struct {
	Translated string
	Replies    map[string]int // TCP and UDP runs: what answered
	Points     []struct {
		ID, Kind string
		Request  *struct{ Src, Dst string } `json:"request_addrs"`
		Reply    *struct{ Src, Dst string } `json:"reply_addrs"`
	}
	Rewrites []struct{ From, To, Direction, Field, Old, New string }
}

func traceNAT(t *testing.T, l *lab.Lab, to string, want int, extra ...string) (jsonReport, natReport) {
	t.Helper()
	n1 := l.Nodes[0]
	args := append([]string{"trace", "--format", "json", "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", to}, extra...)
	code, stdout, stderr := runCLI(t, args...)
	if code != want {
		t.Fatalf("trace to %s: exit %d, want %d; stderr:\n%s", to, code, want, stderr)
	}
	var nat natReport
	decodeInto(t, stdout, &nat)
	return decodeReport(t, stdout), nat
}

// rewriteOf returns the kinds of the points a rewrite of field in
// direction lies between, and its old and new addresses.
func rewriteOf(r jsonReport, nat natReport, direction, field string) (from, to, old, new string, ok bool) {
	kind := map[string]string{}
	for _, p := range r.Points {
		kind[p.ID] = p.Kind
	}
	for _, w := range nat.Rewrites {
		if w.Direction == direction && w.Field == field {
			return kind[w.From], kind[w.To], w.Old, w.New, true
		}
	}
	return "", "", "", "", false
}

func TestPrivilegedTraceExternalMasquerade(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{External: true})
	ext := l.External.Addr.String()
	flags := []string{"--count", "30", "--interval", "10ms"}
	r, nat := traceNAT(t, l, ext, cli.ExitOK, flags...)

	if got, want := pointKinds(r), []string{"pod", "veth", "bridge", "uplink"}; !slices.Equal(got, want) {
		t.Fatalf("point kinds %v, want %v: toward the external host there is no overlay", got, want)
	}
	checkAllSeen(t, r, 30)
	pod, gw := l.Nodes[0].Pod.Addr.String(), lab.ExternalGateway.String()
	uplink := nat.Points[len(nat.Points)-1]
	if uplink.Request == nil || uplink.Request.Src != gw || uplink.Reply == nil || uplink.Reply.Dst != gw {
		t.Errorf("uplink addresses %+v / %+v, want the translated source %s both ways", uplink.Request, uplink.Reply, gw)
	}
	from, to, old, new, ok := rewriteOf(r, nat, "request", "src")
	if !ok || from != "bridge" || to != "uplink" || old != pod || new != gw {
		t.Errorf("request src rewrite %s->%s %s->%s (found %v), want %s->%s between bridge and uplink", from, to, old, new, ok, pod, gw)
	}
	if from, to, old, new, ok := rewriteOf(r, nat, "reply", "dst"); !ok || from != "uplink" || to != "bridge" || old != gw || new != pod {
		t.Errorf("reply dst rewrite %s->%s %s->%s (found %v), want %s->%s between uplink and bridge", from, to, old, new, ok, gw, pod)
	}

	// TCP SYNs through the MASQUERADE, to a closed port of the external
	// host: its kernel's RSTs come back through the un-NAT, each tied to
	// its SYN at every point (the tuple differs between bridge and uplink,
	// never within a point), the rewrites where they were for ICMP.
	tcp, tnat := traceNAT(t, l, ext, cli.ExitOK, append(flags, "--proto", "tcp", "--port", "443")...)
	checkAllSeen(t, tcp, 30)
	if tnat.Replies["rst"] != 30 {
		t.Errorf("TCP through the masquerade: replies %v, want 30 rst from the closed port", tnat.Replies)
	}
	if from, to, old, new, ok := rewriteOf(tcp, tnat, "request", "src"); !ok || from != "bridge" || to != "uplink" || old != pod || new != gw {
		t.Errorf("TCP request src rewrite %s->%s %s->%s (found %v), want %s->%s between bridge and uplink", from, to, old, new, ok, pod, gw)
	}
	if from, to, old, new, ok := rewriteOf(tcp, tnat, "reply", "dst"); !ok || from != "uplink" || to != "bridge" || old != gw || new != pod {
		t.Errorf("TCP reply dst rewrite %s->%s %s->%s (found %v), want %s->%s between uplink and bridge", from, to, old, new, ok, gw, pod)
	}

	// Delay in the external host itself: beyond the uplink.
	delayIn(t, l, l.External.NS, l.External.NSPath, "INPUT", 2*time.Millisecond)
	delayed, _ := traceNAT(t, l, ext, cli.ExitOK, flags...)
	checkMoved(t, r, delayed, "network", 2*time.Millisecond)
	iptables(t, l, l.External.NSPath, "-F")

	if err := l.SetFaults(t.Context(), lab.Faults{ForwardReplyLoss: 0.3}); err != nil {
		t.Fatal(err)
	}
	lossy, _ := traceNAT(t, l, ext, cli.ExitFinding, "--count", "60", "--interval", "5ms", "--timeout", "300ms")
	checkLossOnlyOn(t, lossy, "reply uplink->bridge") // FORWARD, after the reply's un-NAT
}

// decodeInto decodes the JSON report into v, failing the test when it
// cannot.
func decodeInto(t *testing.T, stdout string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("trace output is not the JSON report: %v\n%s", err, stdout)
	}
}
