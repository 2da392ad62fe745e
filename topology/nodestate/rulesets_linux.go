package nodestate

import (
	"context"
	"fmt"
	"strings"

	"github.com/cnitrace/cnitrace/topology"
)

// program is one of the node's programs whose output a snapshot keeps.
type program struct {
	name  string   // looked for in programDirs under the host root
	args  []string // after the name
	file  string   // in the namespace's directory
	about string
}

// programs print the packet filter rules of a namespace. The -legacy
// variants matter on nodes where kube-proxy writes legacy iptables rules
// that the nft-based iptables-save only warns about.
var programs = []program{
	{name: "iptables-save", file: "iptables-save.txt", about: "IPv4 iptables rules, the output of iptables-save"},
	{name: "ip6tables-save", file: "ip6tables-save.txt", about: "IPv6 iptables rules, the output of ip6tables-save"},
	{name: "iptables-legacy-save", file: "iptables-legacy-save.txt", about: "IPv4 rules of the legacy (x_tables) backend, the output of iptables-legacy-save"},
	{name: "ip6tables-legacy-save", file: "ip6tables-legacy-save.txt", about: "IPv6 rules of the legacy (x_tables) backend, the output of ip6tables-legacy-save"},
	{name: "nft", args: []string{"list", "ruleset"}, file: "nft-ruleset.txt", about: "nftables rules, the output of nft list ruleset"},
}

// located is a program found on the node, or why not.
type located struct {
	program
	path  string // as the node sees it; "" when not found
	where string // the host root, for messages
}

// locate finds every program once, for all namespaces.
func (r *runner) locate() []located {
	var found []located
	for _, p := range programs {
		path, _ := findProgram(r.root, r.dirs, p.name)
		found = append(found, located{program: p, path: path, where: r.root})
	}
	return found
}

// takeRulesets runs every program found in ns and keeps its output as
// dir/FILE, its stderr (warnings: legacy tables present, say) as
// dir/FILE.stderr.txt when it printed any. A program not found, failed or
// killed is a gap; the others go on.
func (s *Snapshot) takeRulesets(ctx context.Context, r *runner, progs []located, dir string, ns *topology.NetNS) {
	for _, p := range progs {
		name := dir + "/" + p.file
		if p.path == "" {
			s.gap(name, fmt.Sprintf("%s not found under %s (looked in %s)", p.name, p.where, strings.Join(r.dirs, ", ")), nil)
			continue
		}
		out, err := r.run(ctx, ns, p.path, p.args...)
		if err != nil {
			s.gap(name, "", fmt.Errorf("in %s: %w", ns, err))
		}
		if err != nil && len(out.stdout) == 0 {
			continue
		}
		data := out.stdout
		if out.truncated {
			data = append(data, fmt.Sprintf("\n# cnitrace: cut here, at %d bytes: the rest was not kept\n", r.limit)...)
			s.gap(name, fmt.Sprintf("cut at %d bytes", r.limit), nil)
		}
		about := fmt.Sprintf("%s in %s (%s)", p.about, ns, strings.Join(append([]string{p.path}, p.args...), " "))
		if len(data) == 0 {
			about += "; empty: no rules"
		}
		s.add(name, about, data)
		if len(out.stderr) > 0 {
			s.add(name+".stderr.txt", "what "+p.name+" printed on stderr (warnings)", out.stderr)
		}
	}
}
