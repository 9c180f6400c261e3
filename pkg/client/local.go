package client

import (
	"context"
	"net"
	"net/url"
	"time"
)

// OnThisHost reports whether the host of rawURL resolves only to addresses of
// this machine (loopback or one of its interfaces). A load generator sharing
// the machine with its server takes CPU from it: the caller may then leave the
// server its share. Any doubt (a bad URL, a failed lookup) says false.
func OnThisHost(ctx context.Context, rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, u.Hostname())
	if err != nil || len(addrs) == 0 {
		return false
	}
	var local []net.IP
	for _, a := range addrs {
		if a.IP.IsLoopback() {
			continue
		}
		if local == nil {
			ifs, err := net.InterfaceAddrs()
			if err != nil {
				return false
			}
			for _, ia := range ifs {
				if n, ok := ia.(*net.IPNet); ok {
					local = append(local, n.IP)
				}
			}
		}
		found := false
		for _, ip := range local {
			if ip.Equal(a.IP) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
