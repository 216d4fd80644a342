#!/bin/bash
# A signed RAUC update bundle of the image's root slot, for the fleet's add-release:
#
#   image/bundle.sh [--arch arm64|amd64] [--rootfs FILE] [--out DIR]          (make bundle)
#
#   --rootfs   the root slot build.sh wrote (default image/out/upazila-hub-<version>-<arch>
#              .rootfs.ext4; build it first with make image)
#   --boot     arm64: the slot's boot partition build.sh wrote (default ...-arm64.boot.vfat);
#              RAUC writes it to the boot partition that goes with the root slot
#   UPDATE_SIGNING_CERT / UPDATE_SIGNING_KEY   national's signing certificate and key; without
#              them the development CA's (image/sign-dev.sh), with a warning
#   BUNDLE_VERSION   the release's version instead of pyproject.toml's (a rebuilt or patched
#              root of the same appliance, and the QEMU update test's releases); the default
#              --rootfs is still the one named after pyproject.toml's version
#   BUNDLE_SQUASHFS  the payload's mksquashfs compression (default "-comp zstd": level 15,
#              measured on the amd64 root: 260 MB in 3.5 min on 2 busy cores, where RAUC's
#              default gzip made 292 MB in 4.4 min and xz 237 MB in 6 min; tests use
#              "-comp zstd -Xcompression-level 3": 294 MB in 6 s). Debian's kernels read
#              zstd squashfs (CONFIG_SQUASHFS_ZSTD=y)
#
# The bundle's version is the appliance's (pyproject.toml, or BUNDLE_VERSION), the string
# the hub reports, and its compatible is RAUC's system.conf's in the image
# (upazila-hub-<arch>): a hub refuses a bundle for other hardware. Format verity: the hub
# checks every block as it installs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
arch=arm64 outdir=$here/out rootfs='' bootfs=''
while (($#)); do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --rootfs) rootfs=$2; shift 2 ;;
    --boot) bootfs=$2; shift 2 ;;
    --out) outdir=$2; shift 2 ;;
    *) echo "usage: $0 [--arch arm64|amd64] [--rootfs FILE] [--boot FILE] [--out DIR]" >&2; exit 2 ;;
  esac
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml")
rootfs=${rootfs:-$here/out/upazila-hub-$version-$arch.rootfs.ext4}
version=${BUNDLE_VERSION:-$version}
# the fleet's rule for release versions (appliance/fleet/releases.py), checked before the
# minutes mksquashfs takes
[[ $version =~ ^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$ ]] ||
  { echo "bundle.sh: version '$version' must be 1-64 letters, digits, '.', '_', '+', '~' or '-'" >&2; exit 2; }
[[ -f $rootfs ]] || { echo "bundle.sh: no root slot $rootfs: run make image ARCH=$arch" >&2; exit 1; }
if [[ $arch == arm64 ]]; then
  bootfs=${bootfs:-${rootfs%.rootfs.ext4}.boot.vfat}
  [[ -f $bootfs ]] || { echo "bundle.sh: no boot partition $bootfs: run make image" >&2; exit 1; }
fi
for tool in rauc mksquashfs; do
  command -v "$tool" >/dev/null || { echo "bundle.sh: missing $tool" >&2; exit 1; }
done
cert=${UPDATE_SIGNING_CERT:-} key=${UPDATE_SIGNING_KEY:-}
if [[ -z $cert || -z $key ]]; then
  dev=$("$here/sign-dev.sh")
  cert=$dev/signing.cert.pem key=$dev/signing.key.pem
  echo "bundle.sh: WARNING: signed with the development key ($dev); hubs in the field" \
       "only install bundles signed under national's CA" >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp --sparse=always "$rootfs" "$work/rootfs.ext4"
cat >"$work/manifest.raucm" <<MANIFEST
[update]
compatible=upazila-hub-$arch
version=$version
description=upazila hub $version ($arch)

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
MANIFEST
if [[ $arch == arm64 ]]; then
  cp --sparse=always "$bootfs" "$work/boot.vfat"
  printf '\n[image.boot]\nfilename=boot.vfat\n' >>"$work/manifest.raucm"
fi
mkdir -p "$outdir"
out=$outdir/upazila-hub-$version-$arch.raucb
rm -f "$out"
rauc bundle --cert="$cert" --key="$key" \
  --mksquashfs-args="${BUNDLE_SQUASHFS:--comp zstd}" "$work" "$out" >&2
(cd "$outdir" && sha256sum "$(basename "$out")" >"$(basename "$out").sha256")
echo "$out"
