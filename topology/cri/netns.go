package cri

import (
	"fmt"

	"github.com/cnitrace/cnitrace/topology"
)

// OpenNetNS opens the pod's network namespace: NetNSPath, and when that
// fails RuntimeNetNSPath (a pid gone, or a /proc that is not the host's).
// The error wraps both attempts' errors.
func (p *Pod) OpenNetNS() (*topology.NetNS, error) {
	ns, err := topology.OpenNetNS(p.NetNSPath)
	if err == nil || p.RuntimeNetNSPath == "" || p.RuntimeNetNSPath == p.NetNSPath {
		return ns, err
	}
	ns, err2 := topology.OpenNetNS(p.RuntimeNetNSPath)
	if err2 != nil {
		return nil, fmt.Errorf("%w (and %w)", err, err2)
	}
	return ns, nil
}
