package lab

// NamedNetNSDir is where iproute2 keeps named network namespaces; a
// namespace bind-mounted there can be used with `ip netns exec NAME`. Every
// namespace of a lab is pinned there.
const NamedNetNSDir = "/run/netns"
