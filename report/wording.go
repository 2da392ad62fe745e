package report

import "fmt"

// Sentences every renderer of a Result shares, so that the text, Markdown
// and HTML reports say the same thing the same way.

// incompleteText says what an Incomplete report covers.
const incompleteText = "the run stopped early; this report covers only what was recorded until then"

// headline is a report's first sentence, without the program's name:
// "30 probes to 10.244.2.2 from eth0@net:[4026532301] (10.244.1.2): 28
// answered, 2 lost", then the unanswered probes that are not lost (late,
// dropped by cnitrace).
func headline(r *Result) string {
	target := r.Target
	if target == "" {
		target = "unknown target"
	}
	return fmt.Sprintf("%d probes to %s from %s: %d answered, %d lost%s",
		r.Probes.Sent, target, sourceText(r.Source), r.Probes.Received, r.Lost(), notLost(r.Probes))
}

// sourceText names where the probes were sent from: the pod when known
// (podName), the interface and netns, the address.
func sourceText(s Source) string {
	from := "unknown source"
	if s.Interface != "" || s.NetNS != "" {
		from = s.Interface + "@" + s.NetNS
	}
	if s.Addr != "" {
		from += " (" + s.Addr + ")"
	}
	if s.Pod != "" {
		from = podName(s) + " " + from
	}
	return from
}
