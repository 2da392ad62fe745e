package cri

import (
	"cmp"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// notFound builds the error for namespace/name missing among all, with
// the closest names listed.
func notFound(namespace, name string, all []*runtimeapi.PodSandbox) *PodNotFoundError {
	return &PodNotFoundError{
		Namespace: namespace,
		Name:      name,
		Listed:    len(all),
		Closest:   closest(namespace, name, all),
	}
}

// closest returns the distinct namespace/name of the sandboxes in all
// that were likely meant, at most MaxClosest: first pods called name in
// other namespaces (nearest namespace first), then pods of namespace whose
// name starts with name (a Deployment's web-7c9d8f5b4-x2x9k for web) or is
// a typo away from it (an edit distance of at most 2, or a third of its
// length); each group nearest first, ties by name.
func closest(namespace, name string, all []*runtimeapi.PodSandbox) []string {
	type cand struct {
		name  string // namespace/name
		group int    // 0: the name in another namespace, 1: a name in the namespace
		dist  int    // edit distance of what differs: the namespace, or the name
	}
	var cands []cand
	seen := map[string]bool{}
	for _, sb := range all {
		md := sb.GetMetadata()
		full := md.GetNamespace() + "/" + md.GetName()
		if seen[full] {
			continue
		}
		seen[full] = true
		switch d := editDistance(md.GetName(), name); {
		case md.GetName() == name:
			cands = append(cands, cand{full, 0, editDistance(md.GetNamespace(), namespace)})
		case md.GetNamespace() == namespace && (strings.HasPrefix(md.GetName(), name) || d <= max(2, len(name)/3)):
			cands = append(cands, cand{full, 1, d})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.dist, b.dist), cmp.Compare(a.name, b.name))
	})
	var names []string
	for _, c := range cands[:min(len(cands), MaxClosest)] {
		names = append(names, c.name)
	}
	return names
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (pod names are DNS labels: ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
