#!/usr/bin/env bash
# Builds a local stand-in for the public base image (python:3.10-slim-<suite>) when no registry
# can be reached, and tags it under the same name, so kubeflow/Dockerfile builds unchanged on it.
#
#   scripts/base_image.sh IMAGE_NAME         e.g. python:3.10-slim-bookworm
#
# What it is: `debootstrap --variant=minbase <suite>` from the mirror apt already uses, plus the
# shared libraries this machine's CPython 3.10 links against (found with ldd, as the public image
# installs its own build's), ca-certificates/netbase/tzdata, and that CPython copied to /usr/local
# with its standard library, pip and setuptools.
# What differs from the public image (say so wherever its size or behaviour is quoted):
#   - CPython is this machine's 3.10 build (pyenv), not the image's source build of the newest 3.10;
#   - the Debian suite is this machine's own (bookworm on Debian 12, trixie on 13): a CPython built
#     against a newer glibc would not run on an older root filesystem;
#   - no `wheel` package, no GPG_KEY/PYTHON_SHA256 variables, no test suite of the standard library.
set -euo pipefail

name="${1:?usage: base_image.sh IMAGE_NAME}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/find_python.sh"

python310="$(find_python310)" || { echo "error: no Python 3.10 on this machine to put into the base image" >&2; exit 1; }
prefix="$("$python310" -c 'import sys; print(sys.base_prefix)')"
version="$("$python310" -c 'import platform; print(platform.python_version())')"
. /etc/os-release
suite="${VERSION_CODENAME:?/etc/os-release names no Debian suite}"
mirror="$(grep -hoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
          | awk 'NR == 1 {print $2}' || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

for tool in debootstrap dpkg ldd; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; break; }
done

# The Debian packages that hold the libraries CPython and its extension modules load; like the
# public image, Tk's are left out (its _tkinter then fails to import).
libraries="$( (ldd "$python310"; for so in "$prefix"/lib/python3.10/lib-dynload/*.so; do
                 case "$so" in *tkinter*) ;; *) ldd "$so";; esac; done) 2>/dev/null \
             | awk '/=> \//{print $3}' | grep -v "^$prefix" | sort -u)"
packages="$(for lib in $libraries; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null; done \
            | cut -d: -f1 | sort -u | grep -vx libc6 | paste -sd, -)"
packages="ca-certificates,netbase,tzdata${packages:+,$packages}"

work="$(mktemp -d /var/tmp/base-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "==> debootstrap --variant=minbase $suite from $mirror (+ $packages)"
debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

echo "==> CPython $version from $prefix into /usr/local"
rootfs="$work/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/lib" "$rootfs/usr/local/include"
cp -a "$prefix/bin/python3.10" "$rootfs/usr/local/bin/"
cp -a "$prefix"/lib/libpython3.10*.so* "$rootfs/usr/local/lib/"
cp -a "$prefix/include/python3.10" "$rootfs/usr/local/include/"
tar -C "$prefix/lib" --exclude='python3.10/test' --exclude='python3.10/*/test' --exclude='python3.10/*/tests' \
    --exclude='python3.10/site-packages/*' -cf - python3.10 | tar -C "$rootfs/usr/local/lib" -xf -
for package in pip setuptools _distutils_hack distutils-precedence.pth; do
  for path in "$prefix"/lib/python3.10/site-packages/$package*; do
    [ -e "$path" ] && cp -a "$path" "$rootfs/usr/local/lib/python3.10/site-packages/"
  done
done
ln -s python3.10 "$rootfs/usr/local/bin/python3"
ln -s python3 "$rootfs/usr/local/bin/python"
printf '#!/usr/local/bin/python3.10\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n' \
  > "$rootfs/usr/local/bin/pip3"
chmod 755 "$rootfs/usr/local/bin/pip3"
ln -s pip3 "$rootfs/usr/local/bin/pip"
chroot "$rootfs" /sbin/ldconfig
chroot "$rootfs" /usr/local/bin/python3 -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, readline, pip'
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

echo "==> docker import as $name"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV PYTHON_VERSION=$version" \
  --change 'LABEL org.opencontainers.image.description="local stand-in of the public image: this machine'"'"'s CPython on debootstrap minbase (scripts/base_image.sh)"' \
  --change 'CMD ["python3"]' \
  - "$name" >/dev/null
echo "==> $name: $(docker image inspect --format '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}') (stand-in)"
