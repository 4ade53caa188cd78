module github.com/wgdvpn/wgd

go 1.26.0

require golang.org/x/crypto v0.58.0

require (
	github.com/gaissmai/bart v0.30.0 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
