package lab

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func imp(d time.Duration, p float64) Impairment { return Impairment{Delay: d, Loss: p} }

func TestParseFault(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		delay []string // --delay values, in order
		loss  []string // --loss values, in order
		want  Faults
		err   string // a substring of the error, if any
	}{
		{name: "network delay", delay: []string{"network=2ms"}, want: Faults{Wire: true, Network: Network{imp(2*ms, 0), imp(2*ms, 0)}}},
		{name: "zero delay builds the wire", delay: []string{"network=0"}, want: Faults{Wire: true}},
		{name: "microseconds", delay: []string{"network=200us"}, want: Faults{Wire: true, Network: Network{imp(200*time.Microsecond, 0), imp(200*time.Microsecond, 0)}}},
		{name: "per direction", delay: []string{"network-request=1ms", "network-reply=3ms"}, want: Faults{Wire: true, Network: Network{imp(ms, 0), imp(3*ms, 0)}}},
		{name: "later wins", delay: []string{"network=1ms", "network-reply=5ms"}, want: Faults{Wire: true, Network: Network{imp(ms, 0), imp(5*ms, 0)}}},
		{name: "most delay", delay: []string{"network=1s"}, want: Faults{Wire: true, Network: Network{imp(time.Second, 0), imp(time.Second, 0)}}},
		{name: "network loss", loss: []string{"network=0.05"}, want: Faults{Wire: true, Network: Network{imp(0, 0.05), imp(0, 0.05)}}},
		{name: "percent", loss: []string{"network-request=30%"}, want: Faults{Wire: true, Network: Network{Request: imp(0, 0.3)}}},
		{name: "forward request", loss: []string{"forward-request=0.2"}, want: Faults{ForwardRequestLoss: 0.2}},
		{name: "forward both", loss: []string{"forward=1"}, want: Faults{ForwardRequestLoss: 1, ForwardReplyLoss: 1}},
		{name: "forward reply zero", loss: []string{"forward-reply=0"}, want: Faults{}},
		{name: "pod request", loss: []string{"pod-request=0.3"}, want: Faults{PodRequestLoss: 0.3}},
		{name: "pod both", loss: []string{"pod=10%"}, want: Faults{PodRequestLoss: 0.1, PodReplyLoss: 0.1}},
		{name: "delay and loss", delay: []string{"network=2ms"}, loss: []string{"network=0.05", "forward-request=0.2"},
			want: Faults{Wire: true, Network: Network{imp(2*ms, 0.05), imp(2*ms, 0.05)}, ForwardRequestLoss: 0.2}},

		{name: "no equals", delay: []string{"network"}, err: "want WHERE=DURATION"},
		{name: "empty value", delay: []string{"network="}, err: "want WHERE=DURATION"},
		{name: "unknown place", delay: []string{"pod=2ms"}, err: `unknown place "pod"`},
		{name: "forward delay", delay: []string{"forward=2ms"}, err: `unknown place "forward"`},
		{name: "no unit", delay: []string{"network=2"}, err: "DURATION like 2ms"},
		{name: "negative delay", delay: []string{"network=-1ms"}, err: "at most 1s"},
		{name: "too long", delay: []string{"network=2s"}, err: "at most 1s"},
		{name: "delay as loss", loss: []string{"network=2ms"}, err: "P like 0.05 or 5%"},
		{name: "loss above 1", loss: []string{"network=1.5"}, err: "P like 0.05"},
		{name: "loss above 100%", loss: []string{"network=101%"}, err: "P like 0.05"},
		{name: "negative loss", loss: []string{"forward=-0.1"}, err: "P like 0.05"},
		{name: "NaN loss", loss: []string{"forward=NaN"}, err: "P like 0.05"},
		{name: "capitals", loss: []string{"Network=0.1"}, err: "unknown place"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Faults
			var err error
			for _, s := range tt.delay {
				if err = f.SetDelay(s); err != nil {
					break
				}
			}
			for _, s := range tt.loss {
				if err != nil {
					break
				}
				err = f.SetLoss(s)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got error %v, want one line containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f != tt.want {
				t.Errorf("got %+v, want %+v", f, tt.want)
			}
			if err := f.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// Flags renders what SetDelay and SetLoss read back to the same Faults.
func TestFaultsFlagsRoundTrip(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		f    Faults
		want string
	}{
		{Faults{}, ""},
		{Faults{Wire: true}, "--delay network=0"},
		{Faults{Wire: true, Network: Network{imp(2*ms, 0), imp(2*ms, 0)}}, "--delay network=2ms"},
		{Faults{Network: Network{imp(1500*time.Microsecond, 0.3), imp(0, 0)}}, "--delay network-request=1500us --loss network-request=0.3"},
		{Faults{Network: Network{imp(ms, 0.05), imp(3*ms, 0.05)}}, "--delay network-request=1ms --delay network-reply=3ms --loss network=0.05"},
		{Faults{Wire: true, Network: Network{imp(0, 0.1), imp(0, 0.1)}}, "--loss network=0.1"},
		{Faults{ForwardRequestLoss: 0.2, ForwardRules: 20000}, "--loss forward-request=0.2 --bloat 20000"},
		{Faults{ForwardRequestLoss: 0.5, ForwardReplyLoss: 0.5}, "--loss forward=0.5"},
		{Faults{PodReplyLoss: 0.25}, "--loss pod-reply=0.25"},
		{Faults{Network: Network{Reply: imp(7, 0)}}, "--delay network-reply=7ns"},
	}
	for _, tt := range tests {
		got := tt.f.Flags()
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%+v.Flags() = %q, want %q", tt.f, got, tt.want)
		}
		var back Faults
		for i := 0; i+1 < len(got); i += 2 {
			var err error
			switch got[i] {
			case "--delay":
				err = back.SetDelay(got[i+1])
			case "--loss":
				err = back.SetLoss(got[i+1])
			case "--bloat":
				back.ForwardRules = tt.f.ForwardRules
			}
			if err != nil {
				t.Errorf("reading back %q: %v", got, err)
			}
		}
		if back.Network != tt.f.Network || back.ForwardRequestLoss != tt.f.ForwardRequestLoss ||
			back.ForwardReplyLoss != tt.f.ForwardReplyLoss || back.needsWire() != tt.f.needsWire() {
			t.Errorf("%q reads back as %+v, want %+v", got, back, tt.f)
		}
	}
}

func TestFaultsValidate(t *testing.T) {
	bad := []Faults{
		{Network: Network{Request: imp(-time.Millisecond, 0)}},
		{Network: Network{Reply: imp(MaxNetworkDelay+1, 0)}},
		{Network: Network{Reply: imp(0, 1.01)}},
		{Network: Network{Request: imp(0, math.NaN())}},
		{ForwardRequestLoss: -0.5},
		{ForwardReplyLoss: math.Inf(1)},
		{PodRequestLoss: 2},
		{PodReplyLoss: math.NaN()},
		{ForwardRules: -1},
		{ForwardRules: MaxBloatRules + 1},
	}
	for _, f := range bad {
		if err := f.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", f)
		}
	}
	if err := (Faults{Network: Network{imp(MaxNetworkDelay, 1), imp(0, 0)}, ForwardRules: MaxBloatRules}).Validate(); err != nil {
		t.Errorf("Validate of the limits: %v", err)
	}
}

func TestFaultRules(t *testing.T) {
	got := strings.Split(strings.TrimSuffix(string(faultRules(Faults{ForwardRequestLoss: 0.2, ForwardReplyLoss: 1e-5, ForwardRules: 2}, LayoutFlannel)), "\n"), "\n")
	want := []string{
		"*filter",
		":CNITRACE-FORWARD-REQUEST - [0:0]",
		":CNITRACE-FORWARD-REPLY - [0:0]",
		`-A FORWARD -i cni0 -p icmp --icmp-type echo-request -m comment --comment "cnitrace forward-request probes" -j CNITRACE-FORWARD-REQUEST`,
		`-A FORWARD -i cni0 -p tcp --tcp-flags SYN,ACK,RST SYN -m comment --comment "cnitrace forward-request probes" -j CNITRACE-FORWARD-REQUEST`,
		`-A FORWARD -i cni0 -p udp -m comment --comment "cnitrace forward-request probes" -j CNITRACE-FORWARD-REQUEST`,
		`-A CNITRACE-FORWARD-REQUEST -m statistic --mode random --probability 0.2 -m comment --comment "cnitrace forward-request loss" -j DROP`,
		`-A FORWARD -o cni0 -p icmp --icmp-type echo-reply -m comment --comment "cnitrace forward-reply probes" -j CNITRACE-FORWARD-REPLY`,
		`-A FORWARD -o cni0 -p tcp --tcp-flags SYN,ACK SYN,ACK -m comment --comment "cnitrace forward-reply probes" -j CNITRACE-FORWARD-REPLY`,
		`-A FORWARD -o cni0 -p tcp --tcp-flags RST RST -m comment --comment "cnitrace forward-reply probes" -j CNITRACE-FORWARD-REPLY`,
		`-A FORWARD -o cni0 -p udp -m comment --comment "cnitrace forward-reply probes" -j CNITRACE-FORWARD-REPLY`,
		`-A CNITRACE-FORWARD-REPLY -m statistic --mode random --probability 1e-05 -m comment --comment "cnitrace forward-reply loss" -j DROP`,
		"-A FORWARD -s 10.255.0.0/32 -d 10.255.0.0/32 -j DROP",
		"-A FORWARD -s 10.255.0.1/32 -d 10.255.0.1/32 -j DROP",
		"COMMIT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("faultRules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := string(faultRules(Faults{ForwardReplyLoss: 0.5}, LayoutFlannel)); strings.Contains(got, "forward-request") {
		t.Errorf("reply-only loss renders a request rule:\n%s", got)
	}
}

func TestLaneStatsString(t *testing.T) {
	s := LaneStats{Forwarded: 4, Lost: 1, SumLate: 200 * time.Microsecond, MaxLate: 90 * time.Microsecond}
	if got, want := s.String(), "4 forwarded, 1 lost, 0 overflowed, 0 skipped, 0 send errors, late mean 50us max 90us"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := (LaneStats{}).MeanLate(); got != 0 {
		t.Errorf("MeanLate of nothing = %v, want 0", got)
	}
}

func TestPodRules(t *testing.T) {
	got := strings.Split(strings.TrimSuffix(string(podRules(Faults{PodRequestLoss: 0.3, PodReplyLoss: 0.1})), "\n"), "\n")
	// The probes of every protocol, as the forward loss matches them.
	want := []string{
		"*filter",
		":CNITRACE-POD-REQUEST - [0:0]",
		":CNITRACE-POD-REPLY - [0:0]",
		`-A OUTPUT -p icmp --icmp-type echo-request -m comment --comment "cnitrace pod-request probes" -j CNITRACE-POD-REQUEST`,
		`-A OUTPUT -p tcp --tcp-flags SYN,ACK,RST SYN -m comment --comment "cnitrace pod-request probes" -j CNITRACE-POD-REQUEST`,
		`-A OUTPUT -p udp -m comment --comment "cnitrace pod-request probes" -j CNITRACE-POD-REQUEST`,
		`-A CNITRACE-POD-REQUEST -m statistic --mode random --probability 0.3 -m comment --comment "cnitrace pod-request loss" -j DROP`,
		`-A INPUT -p icmp --icmp-type echo-reply -m comment --comment "cnitrace pod-reply probes" -j CNITRACE-POD-REPLY`,
		`-A INPUT -p tcp --tcp-flags SYN,ACK SYN,ACK -m comment --comment "cnitrace pod-reply probes" -j CNITRACE-POD-REPLY`,
		`-A INPUT -p tcp --tcp-flags RST RST -m comment --comment "cnitrace pod-reply probes" -j CNITRACE-POD-REPLY`,
		`-A INPUT -p udp -m comment --comment "cnitrace pod-reply probes" -j CNITRACE-POD-REPLY`,
		`-A CNITRACE-POD-REPLY -m statistic --mode random --probability 0.1 -m comment --comment "cnitrace pod-reply loss" -j DROP`,
		"COMMIT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("podRules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := string(podRules(Faults{PodReplyLoss: 0.5})); strings.Contains(got, "OUTPUT") || strings.Contains(got, "POD-REQUEST") {
		t.Errorf("reply-only loss renders a request rule:\n%s", got)
	}
}
