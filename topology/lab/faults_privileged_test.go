//go:build linux

package lab_test

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// pingRun pings pod 2 from pod 1 count times, every 10 ms (a bounded run:
// count/100 s plus one second for the last reply), and returns the RTTs
// of the replies in ms and how many echoes were lost.
func pingRun(t *testing.T, l *lab.Lab, count int) (rtts []float64, lost int) {
	t.Helper()
	out, err := l.Command(t.Context(), l.Nodes[0].Pod.NSPath, "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "1",
		l.Nodes[1].Pod.Addr.String()).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "packets transmitted") {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	for _, m := range regexp.MustCompile(`time=([0-9.]+) ms`).FindAllStringSubmatch(string(out), -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("ping printed %q: %v", m[0], err)
		}
		rtts = append(rtts, v)
	}
	return rtts, count - len(rtts)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// network returns the same impairment in both directions.
func network(d time.Duration, p float64) lab.Network {
	return lab.Network{Request: lab.Impairment{Delay: d, Loss: p}, Reply: lab.Impairment{Delay: d, Loss: p}}
}

// The wire adds 2D to the RTT (medians of 40 pings). At D = 0 it adds its
// own cost, a user-space copy of every frame, which depends on how soon the
// delay line wakes: 0.05-0.1 ms on a quiet machine, 0.25-0.35 ms under
// -race on a loaded one, so it only has to stay under 1 ms. Each delay
// must land as a ratio of 2D: 0.8-1.3 for the ms delays (a sleeping delay
// line wakes on time: 1.01-1.06 measured under load), 0.5-2.5 for 200 us,
// which is within the lab's jitter. How precisely it lands is make
// bench's job.
func TestPrivilegedWireDelay(t *testing.T) {
	plain := labtest.New(t)
	wired := labtest.NewWith(t, lab.Config{Faults: lab.Faults{Wire: true}})
	pingRun(t, plain, 3) // resolve the uplink neighbours
	pingRun(t, wired, 3)
	base, _ := pingRun(t, plain, 40)
	t.Logf("plain lab: RTT median %.3f ms", median(base))
	for _, tc := range []struct {
		d        time.Duration
		min, max float64 // bounds of added / 2D
	}{
		{0, 0, 0},
		{200 * time.Microsecond, 0.5, 2.5},
		{time.Millisecond, 0.8, 1.3},
		{2 * time.Millisecond, 0.8, 1.3},
		{5 * time.Millisecond, 0.8, 1.3},
	} {
		if err := wired.SetFaults(t.Context(), lab.Faults{Wire: true, Network: network(tc.d, 0)}); err != nil {
			t.Fatal(err)
		}
		rtts, lost := pingRun(t, wired, 40)
		stats, _ := wired.WireStats()
		added, want := median(rtts)-median(base), 2*tc.d.Seconds()*1e3
		t.Logf("D = %4d us: RTT median %.3f ms, min %.3f, max %.3f; added %.3f ms (want %.3f); %d lost; %v",
			tc.d.Microseconds(), median(rtts), slices.Min(rtts), slices.Max(rtts), added, want, lost, stats)
		if lost > 0 {
			t.Errorf("D = %v lost %d of 40 echoes, want none", tc.d, lost)
		}
		if tc.d == 0 {
			if added > 1 {
				t.Errorf("the wire at D = 0 added %.3f ms to the RTT, want under 1 ms", added)
			}
			continue
		}
		if ratio := added / want; ratio < tc.min || ratio > tc.max {
			t.Errorf("D = %v added %.3f ms to the RTT: %.2f of 2D, want %.1f-%.1f", tc.d, added, ratio, tc.min, tc.max)
		}
	}
}

// Loss on the request lane only: about 30% of 100 echoes go, every one of
// them dropped by the request lane, none by the reply lane.
func TestPrivilegedWireLoss(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Faults: lab.Faults{Wire: true}})
	pingRun(t, l, 3) // resolve the uplink neighbours before frames go missing
	f := lab.Faults{Network: lab.Network{Request: lab.Impairment{Loss: 0.3}}}
	if err := l.SetFaults(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	_, lost := pingRun(t, l, 100)
	stats, _ := l.WireStats()
	t.Logf("network-request loss 0.3: %d of 100 lost; %v", lost, stats)
	if lost < 15 || lost > 45 {
		t.Errorf("lost %d of 100 echoes, want 30 +- 15", lost)
	}
	if stats.Request.Lost < uint64(lost) || stats.Reply.Lost != 0 {
		t.Errorf("lanes lost %d requests and %d replies, want >= %d and 0", stats.Request.Lost, stats.Reply.Lost, lost)
	}
}

// Forward loss drops only what it should, as the rule's counter shows, and
// goes away when cleared; the wire is never built for it.
func TestPrivilegedForwardLoss(t *testing.T) {
	l := labtest.New(t)
	pingRun(t, l, 3)
	for _, tc := range []struct {
		what, other string
		f           lab.Faults
	}{
		{"forward-request", "forward-reply", lab.Faults{ForwardRequestLoss: 0.5}},
		{"forward-reply", "forward-request", lab.Faults{ForwardReplyLoss: 0.5, ForwardRules: 100}},
	} {
		if err := l.SetFaults(t.Context(), tc.f); err != nil {
			t.Fatal(err)
		}
		_, lost := pingRun(t, l, 100)
		dropped, ok := lossRuleCount(t, l, tc.what)
		t.Logf("%s loss 0.5: %d of 100 lost, the rule dropped %d", tc.what, lost, dropped)
		if !ok || dropped != lost || lost < 25 || lost > 75 {
			t.Errorf("%s loss 0.5: %d of 100 lost, the rule dropped %d (found %v); want 50 +- 25, all by the rule", tc.what, lost, dropped, ok)
		}
		if _, ok := lossRuleCount(t, l, tc.other); ok {
			t.Errorf("%s loss also loaded the %s rule", tc.what, tc.other)
		}
		if l.Wire != nil {
			t.Errorf("forward loss built the wire")
		}
	}
	if err := l.SetFaults(t.Context(), lab.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, lost := pingRun(t, l, 50); lost != 0 {
		t.Errorf("%d of 50 lost after clearing the faults", lost)
	}
	if got := forwardRules(t, l, 1); got != 1 {
		t.Errorf("node 1 has %d FORWARD lines after clearing, want 1 (the policy)", got)
	}
	if out, err := l.Command(t.Context(), l.Nodes[0].NSPath, "iptables", "-w", "-S").CombinedOutput(); err != nil || strings.Contains(string(out), "CNITRACE-FORWARD") {
		t.Errorf("iptables -S in node 1 after clearing (%v): want no loss chain left:\n%s", err, out)
	}
}

// lossRuleCount returns how many packets the loss rule named what dropped
// in node 1, and whether it exists.
func lossRuleCount(t *testing.T, l *lab.Lab, what string) (int, bool) {
	t.Helper()
	out, err := l.Command(t.Context(), l.Nodes[0].NSPath, "iptables", "-w", "-L", "-v", "-x", "-n").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -L: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") { // every chain: the rule is in one of its own
		if strings.Contains(line, "/* "+lab.LossRuleComment(what)+" */") {
			n, err := strconv.Atoi(strings.Fields(line)[0])
			if err != nil {
				t.Fatalf("iptables -L line %q: %v", line, err)
			}
			return n, true
		}
	}
	return 0, false
}

// SetFaults takes the wire out again, and Close removes a lab with a wire
// and its delay line entirely.
func TestPrivilegedWireComesAndGoes(t *testing.T) {
	labtest.Require(t)
	self := labtest.Self(t)
	l, err := lab.Up(t.Context(), lab.Config{Faults: lab.Faults{Network: network(time.Millisecond, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wirePath := filepath.Join(lab.NamedNetNSDir, l.Name+"-wire")
	if _, err := os.Lstat(wirePath); err != nil || l.Wire == nil {
		t.Fatalf("no wire namespace after Up with a network delay: %v", err)
	}
	if names, err := lab.List(); err != nil || !slices.Contains(names, l.Name) {
		t.Errorf("List() = %v, %v; want it to contain %s", names, err, l.Name)
	}
	if out, err := l.Command(t.Context(), l.Nodes[0].NSPath, "ethtool", "-k", lab.UplinkName).Output(); err == nil &&
		!strings.Contains(string(out), "tx-checksumming: off") {
		t.Errorf("tx-checksumming of node 1's uplink is not off:\n%s", out)
	}
	if rtts, _ := pingRun(t, l, 10); median(rtts) < 2 {
		t.Errorf("RTT median %.3f ms with a 1 ms wire, want > 2 ms", median(rtts))
	}
	if err := l.SetFaults(t.Context(), lab.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(wirePath); err == nil || l.Wire != nil {
		t.Errorf("the wire namespace is still there after clearing the faults")
	}
	if rtts, lost := pingRun(t, l, 10); median(rtts) > 1 || lost > 0 {
		t.Errorf("RTT median %.3f ms, %d lost, after taking the wire out; want < 1 ms, none", median(rtts), lost)
	}
	if err := l.SetFaults(t.Context(), lab.Faults{Network: network(0, 0.01)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	labtest.CheckGone(t, l.Name)
	labtest.CheckThreads(t, self)
}

// Changing the network's faults while echoes cross the wire loses none of
// them: the delay line running in this process is retuned in place, its
// queue kept, rather than closed with what it holds and opened again.
// Six changes during 200 echoes every 10 ms: a restart drops the echo it
// holds at 5 ms about half the time, and every echo that comes while it
// reopens its rings.
func TestPrivilegedWireRetunesWithoutLoss(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Faults: lab.Faults{Wire: true}})
	pingRun(t, l, 3) // resolve the uplink neighbours
	done := make(chan int, 1)
	go func() {
		_, lost := pingRun(t, l, 200)
		done <- lost
	}()
	for i := range 6 {
		time.Sleep(250 * time.Millisecond)
		d := 5 * time.Millisecond
		if i%2 == 1 {
			d = 0
		}
		if err := l.SetFaults(t.Context(), lab.Faults{Wire: true, Network: network(d, 0)}); err != nil {
			t.Error(err)
		}
	}
	lost := <-done
	stats, _ := l.WireStats()
	t.Logf("six changes of delay during 200 echoes: %d lost; %v", lost, stats)
	if lost != 0 {
		t.Errorf("lost %d of 200 echoes while the wire's delay changed, want none", lost)
	}
	if s := stats.Request; s.Lost+s.Overflowed+s.SendErrors != 0 {
		t.Errorf("request lane: %v; want nothing lost, overflowed or refused", s)
	}
	if n := stats.Request.Forwarded; n == 0 || n >= 200 {
		t.Errorf("the request lane forwarded %d echoes since the last change, want some of the 200 and not all: a change starts its counts afresh", n)
	}
}
