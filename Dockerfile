# wgd in a container: one WireGuard interface from a mounted wg-quick config.
#
#   docker build -t wgd .
#   docker run -d --name wg0 --cap-add NET_ADMIN --device /dev/net/tun \
#     -v /etc/wireguard/wg0.conf:/etc/wireguard/wg0.conf:ro -p 51820:51820/udp wgd
#
# See docs/docker.md (other interface names, full tunnels, hooks, DNS).

# Build stage: a static binary (no cgo), reproducible paths (-trimpath).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/wgd ./cmd/wgd

# Final stage: Alpine rather than distroless/static, because PreUp/PostUp/
# PreDown/PostDown hooks are run by bash (as wg-quick runs them), and hooks
# usually call ip, iptables or nft; distroless has no shell at all. Alpine
# with bash adds about 5 MB to the ~10 MB binary.
FROM alpine:3.22
RUN apk add --no-cache bash \
 && mkdir -p /etc/wireguard /run/wireguard /run/wgd \
 && chmod 0700 /etc/wireguard
COPY --from=build /out/wgd /usr/local/bin/wgd
# The WireGuard port wg-quick configs usually use; publish what ListenPort says.
EXPOSE 51820/udp
# docker stop sends SIGTERM: wgd runs PreDown, removes routes, rules and
# DNS, deletes the link and runs PostDown before it exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wgd", "up", "--foreground"]
# The interface is named after the file: mount wg1.conf and pass
# /etc/wireguard/wg1.conf to get wg1.
CMD ["/etc/wireguard/wg0.conf"]
