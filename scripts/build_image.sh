#!/usr/bin/env bash
# make image: builds the task image (kubeflow/Dockerfile) on this machine, with no network inside
# the build.
#
#   IMAGE=imdb-sentiment:dev BASE_IMAGE=python:3.10-slim-bookworm scripts/build_image.sh
#
# 1. a Docker daemon: the running one, else `dockerd` started here (root; Debian's docker.io);
# 2. the base image: present, else pulled, else a local stand-in under the same name
#    (scripts/base_image.sh says what differs from the public one);
# 3. build/wheelhouse: a wheel for every line of requirements.lock, fetched (or built from an
#    sdist) on the host, where pip can verify the registry; kept while the lock is unchanged;
# 4. `docker build --network none`, then a check that the image starts as uid 1000.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
image="${IMAGE:-imdb-sentiment:dev}"
. /etc/os-release
base="${BASE_IMAGE:-python:3.10-slim-${VERSION_CODENAME:-bookworm}}"
python="${VENV:-$root/.venv}/bin/python"
started=$SECONDS

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    echo "==> installing docker.io (dockerd)"
    apt-get update -qq && apt-get install -y -qq docker.io >/dev/null
  fi
  echo "==> starting dockerd (log: /var/log/imdb-dockerd.log)"
  nohup dockerd >/var/log/imdb-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/imdb-dockerd.log >&2; echo "error: dockerd did not start" >&2; exit 1; }
fi

if ! docker image inspect "$base" >/dev/null 2>&1; then
  if ! timeout 120 docker pull "$base" >/dev/null 2>&1; then
    echo "==> $base cannot be pulled here: building a local stand-in"
    bash "$root/scripts/base_image.sh" "$base"
  fi
fi

wheels="$root/build/wheelhouse"
stamp="$wheels/.lock.sha256"
want="$(sha256sum requirements.lock | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> wheelhouse for requirements.lock -> build/wheelhouse (about 1 GB the first time)"
  rm -rf "$wheels" && mkdir -p "$wheels"
  "$python" -m pip wheel --no-deps -r requirements.lock -w "$wheels" > build/wheelhouse.log 2>&1 \
    || { tail -20 build/wheelhouse.log >&2; echo "error: could not fetch the wheels (build/wheelhouse.log)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

echo "==> docker build --network none -t $image (base $base)"
build_started=$SECONDS
docker build --network none --build-arg BASE_IMAGE="$base" -f kubeflow/Dockerfile -t "$image" . \
  > build/image-build.log 2>&1 || { tail -30 build/image-build.log >&2; echo "error: docker build failed (build/image-build.log)" >&2; exit 1; }
build_seconds=$((SECONDS - build_started))

identity="$(docker run --rm --network none "$image")"
case "$identity" in
  *"uid=1000"*) ;;
  *) echo "error: $image does not start as uid 1000: $identity" >&2; exit 1 ;;
esac
size="$(docker image inspect --format '{{.Size}}' "$image")"
echo "==> $image: $(awk -v b="$size" 'BEGIN {printf "%.2f GB", b/1e9}') uncompressed; docker build ${build_seconds}s, all $((SECONDS - started))s"
echo "    $identity"
