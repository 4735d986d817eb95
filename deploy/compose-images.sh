#!/usr/bin/env bash
# Builds the local base images `make compose-test` uses instead of the public
# ones, from Debian packages only (no image registry needed):
#
#   gate-local/build:bookworm-<go version>-<hash of BUILD_PKGS>  gcc, libc6-dev, pkg-config,
#       libzmq3-dev, zlib1g-dev, ca-certificates and the host's Go (GOROOT copied to
#       /usr/local/go): stands in for golang:1.26-bookworm
#   gate-local/build:bookworm-<go version>-<hash>-mods-<hash of go.mod, go.sum>
#       the same plus the project's modules from the host's module cache in
#       /go/pkg/mod/cache/download, so that the Dockerfile's
#       `go mod download` needs no network (GO_IMAGE)
#   gate-local/runtime:bookworm   libzmq5, ca-certificates: stands in for
#       debian:bookworm-slim (RUNTIME_IMAGE)
#   gate-local/prometheus:bookworm   Debian's prometheus package (and wget
#       for the compose healthcheck): stands in for prom/prometheus
#       (PROMETHEUS_IMAGE)
#
# The first three are `debootstrap --variant=minbase bookworm` with the packages above,
# imported with `docker import`. An image that already exists is kept, so
# only the first run pays (a few minutes); `make compose-clean-images`
# removes them. Installs debootstrap with apt-get when missing (root only).
# Prints the three image names as shell assignments on stdout.
set -euo pipefail

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
GO=${GO:-go}
ROOT=${GATE_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
GOROOT_HOST=$("$GO" env GOROOT)
GOVERSION=$("$GO" env GOVERSION)
CACHE=${DEBOOTSTRAP_CACHE:-/var/cache/gate-debootstrap}

# The build image's packages; its tag carries a hash of the list, so that a
# change of the list builds a new image instead of reusing a stale one.
BUILD_PKGS=gcc,libc6-dev,pkg-config,libzmq3-dev,zlib1g-dev,ca-certificates
BUILD_IMAGE=gate-local/build:$SUITE-$GOVERSION-$(printf %s "$BUILD_PKGS" | sha256sum | cut -c1-8)
RUNTIME_IMAGE=gate-local/runtime:$SUITE
PROMETHEUS_IMAGE=gate-local/prometheus:$SUITE

log() { echo "compose-images: $*" >&2; }

have() { docker image inspect "$1" >/dev/null 2>&1; }

need_debootstrap() {
	command -v debootstrap >/dev/null && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		log "debootstrap is missing. Run: sudo apt-get install -y debootstrap"
		exit 1
	fi
	log "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 debootstrap >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 debootstrap >/dev/null; }
}

# rootfs NAME PACKAGES HOOK CHANGE...: debootstrap a minbase tree with
# PACKAGES, run HOOK DIR on it, import it as NAME with the --change lines.
rootfs() {
	local name=$1 pkgs=$2 hook=$3
	shift 3
	if have "$name"; then
		log "$name exists, kept"
		return
	fi
	need_debootstrap
	if [ "$(id -u)" != 0 ]; then
		log "building $name needs root (debootstrap)"
		exit 1
	fi
	mkdir -p "$CACHE"
	local dir
	dir=$(mktemp -d /var/tmp/gate-rootfs.XXXXXX)
	# shellcheck disable=SC2064 # expand dir now
	trap "rm -rf '$dir'" EXIT
	log "debootstrap $SUITE ($pkgs) for $name"
	if ! debootstrap --variant=minbase --include="$pkgs" --cache-dir="$CACHE" \
		"$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1; then
		tail -n 30 "$dir.log" >&2
		rm -f "$dir.log"
		exit 1
	fi
	rm -f "$dir.log"
	"$hook" "$dir"
	# No apt lists or downloaded .debs in the image; keep it small.
	rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
	local args=()
	for c in "$@"; do args+=(--change "$c"); done
	log "docker import $name"
	tar -C "$dir" -c . | docker import "${args[@]}" - "$name" >/dev/null
	rm -rf "$dir"
	trap - EXIT
}

hook_build() {
	log "copying Go from $GOROOT_HOST ($GOVERSION)"
	mkdir -p "$1/usr/local" "$1/go"
	cp -a "$GOROOT_HOST" "$1/usr/local/go"
}

hook_runtime() { :; }

hook_prometheus() {
	# The package's user (created by its postinst) owns the data directory;
	# a named volume mounted at /prometheus starts with this owner.
	chroot "$1" install -d -o prometheus -g prometheus /prometheus
}

rootfs "$BUILD_IMAGE" "$BUILD_PKGS" hook_build \
	'ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	'ENV GOPATH=/go' 'ENV GOTOOLCHAIN=local' 'WORKDIR /go' 'CMD ["bash"]'
rootfs "$RUNTIME_IMAGE" libzmq5,ca-certificates hook_runtime \
	'CMD ["bash"]'
rootfs "$PROMETHEUS_IMAGE" prometheus,wget hook_prometheus \
	'USER prometheus' 'WORKDIR /prometheus' 'EXPOSE 9090' \
	'ENTRYPOINT ["/usr/bin/prometheus"]' \
	'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'

# The modules layer: rebuilt when go.mod or go.sum change; older ones go.
MODS_IMAGE=$BUILD_IMAGE-mods-$(cat "$ROOT/go.mod" "$ROOT/go.sum" | sha256sum | cut -c1-12)
if have "$MODS_IMAGE"; then
	log "$MODS_IMAGE exists, kept"
else
	log "docker build $MODS_IMAGE (modules from the host's cache)"
	ctx=$(mktemp -d /var/tmp/gate-mods.XXXXXX)
	# shellcheck disable=SC2064 # expand ctx now
	trap "rm -rf '$ctx'" EXIT
	dl=$("$GO" env GOMODCACHE)/cache/download
	(cd "$ROOT" && "$GO" mod download -json) >"$ctx/list.json"
	grep -o '"\(Info\|GoMod\|Zip\)": "[^"]*"' "$ctx/list.json" | sed 's/^"[A-Za-z]*": "//; s/"$//' |
		while read -r f; do
			rel=${f#"$dl"/}
			mkdir -p "$ctx/cache/download/$(dirname "$rel")"
			cp "$f" "$ctx/cache/download/$rel"
			case $f in *.zip) cp "${f%.zip}.ziphash" "$ctx/cache/download/${rel%.zip}.ziphash" ;; esac
		done
	# The .mod (and .info) of every module version in the graph: go mod
	# download reads them all, also the versions it does not select.
	(cd "$ROOT" && "$GO" mod graph) | tr ' ' '\n' | grep @ | sort -u |
		while read -r m; do
			esc=$(printf '%s' "${m%@*}" | sed 's/[A-Z]/!\L&/g')
			rel=$esc/@v/${m##*@}
			for f in "$dl/$rel.mod" "$dl/$rel.info"; do
				if [ -f "$f" ]; then
					mkdir -p "$ctx/cache/download/$esc/@v"
					cp "$f" "$ctx/cache/download/$esc/@v/"
				fi
			done
		done
	rm "$ctx/list.json"
	printf 'FROM %s\nCOPY cache /go/pkg/mod/cache\n' "$BUILD_IMAGE" |
		docker build -q -t "$MODS_IMAGE" -f - "$ctx" >/dev/null
	rm -rf "$ctx"
	trap - EXIT
	for old in $(docker images --format '{{.Repository}}:{{.Tag}}' "${BUILD_IMAGE%%:*}" | grep -F -- "$BUILD_IMAGE-mods-" | grep -vxF "$MODS_IMAGE"); do
		docker rmi "$old" >/dev/null || true
	done
fi

echo "GO_IMAGE=$MODS_IMAGE"
echo "RUNTIME_IMAGE=$RUNTIME_IMAGE"
echo "PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE"
