# wgd: `make demo` runs a tunnel between two namespaces; `make test` runs
# every check CI runs. Both install what they need that is missing.
SHELL := /bin/bash
GO ?= go
GOBIN ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(GOBIN)/staticcheck
# wireguard-go is a test oracle and benchmark peer, never a runtime
# dependency: pinned, built through the module proxy.
WIREGUARD_GO_VERSION := v0.0.0-20260522210424-ecfc5a8d5446
# go install names the binary after the module: "wireguard".
WIREGUARD_GO := $(GOBIN)/wireguard
DEBIAN_PACKAGES := iproute2 wireguard-tools iperf3 iputils-ping procps nftables iptables
FUZZTIME ?= 3s

.PHONY: all build deps tools test lint unit fuzz demo bench soak clean install uninstall

all: build

build:
	$(GO) build -o bin/wgd ./cmd/wgd

# install puts the binary in PREFIX/bin and the systemd unit (pointing at
# it) in UNITDIR; DESTDIR stages both for packagers. It does not enable or
# start anything; uninstall removes both files.
PREFIX ?= /usr/local
UNITDIR ?= /etc/systemd/system
install: build
	install -D -m 0755 bin/wgd $(DESTDIR)$(PREFIX)/bin/wgd
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/wgd|$(PREFIX)/bin/wgd|g' dist/systemd/wgd@.service > $(DESTDIR)$(UNITDIR)/wgd@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/wgd@.service
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/wgd $(DESTDIR)$(UNITDIR)/wgd@.service
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# deps installs the Debian packages the tests and the demo use, only when
# something is missing, so a second run is fast. Without root it only warns.
deps:
	@./scripts/deps.sh $(DEBIAN_PACKAGES)

tools: $(STATICCHECK) $(WIREGUARD_GO)

$(STATICCHECK):
	GOBIN=$(GOBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(WIREGUARD_GO):
	GOBIN=$(GOBIN) $(GO) install golang.zx2c4.com/wireguard@$(WIREGUARD_GO_VERSION)

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit: tools
	WIREGUARD_GO=$(WIREGUARD_GO) ./scripts/gotest.sh

test: deps lint build unit
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

fuzz:
	FUZZTIME=$${FUZZTIME:-60s} ./scripts/fuzz.sh

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

# soak runs wgd against wireguard-go for minutes of wall-clock time:
# keepalive, rekey, session expiry, leaks (SOAK_ARGS="--minutes 9" etc.).
soak: deps tools build
	@./scripts/deps.sh jq python3
	./scripts/soak.sh --wgd bin/wgd --wireguard-go $(WIREGUARD_GO) $(SOAK_ARGS)

clean:
	rm -rf bin
