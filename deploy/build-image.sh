#!/usr/bin/env bash
# Builds the Remora container image from the repository root with deploy/Dockerfile.
#   deploy/build-image.sh                  → remora:dev
#   IMAGE=registry.example/remora:0.1.0 deploy/build-image.sh [extra docker build args]
set -euo pipefail

if ! command -v docker >/dev/null 2>&1; then
  echo "build-image.sh: 'docker' is not installed or not on PATH; install Docker (or a" >&2
  echo "compatible CLI such as podman with 'alias docker=podman') and run this again." >&2
  exit 1
fi

if ! docker info >/dev/null 2>&1; then
  echo "build-image.sh: 'docker' is installed but cannot reach a Docker engine (is the daemon" >&2
  echo "running, and may this user use its socket?). 'docker info' shows the error." >&2
  exit 1
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${IMAGE:-remora:dev}"
cd "$root"
echo "building ${image} from ${root} with deploy/Dockerfile"
exec docker build -f deploy/Dockerfile -t "${image}" "$@" .
