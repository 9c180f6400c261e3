// Package kernel holds an end-to-end test that rebuilds the keep-alive
// scale-up experiment with the Linux kernel's own NAT, the way kube-proxy's
// iptables mode programs a node: network namespaces for the node and each pod,
// a bridge, and a Service virtual IP DNAT-ed by statistic-random rules.
//
// The test needs root, iproute2 and a working iptables; it skips otherwise.
// Every namespace it makes is private to one run and removed when it ends, and
// no address outside those namespaces is ever contacted.
package kernel
