#!/bin/bash
# Build the upazila hub SD image from the official Raspberry Pi OS Lite (arm64, bookworm)
# image: loop-mount it, add a data partition, install the appliance in a chroot (through
# qemu-user-static on an x86 host), enable the units, make the root read-only (overlayroot).
#
#   sudo image/build.sh BASE_IMAGE [OUT]
#     BASE_IMAGE  e.g. 2024-11-19-raspios-bookworm-arm64-lite.img.xz (.img or .img.xz)
#     OUT         default: image/out/upazila-hub-<version>-arm64.img (then .img.xz)
#   environment:
#     BASE_SHA256       refuse a base image with another SHA-256 (recommended)
#     WHEEL             the appliance wheel (default: built from this checkout)
#     ADMIN_SSH_PUBKEY  file with the national team's SSH public key: creates `hubadmin`
#                       (key only, sudo) and enables sshd; without it there is no login
#     ROOT_EXTRA_MB     room added to the root file system (default 1024)
#     DATA_MB           initial data partition (default 512; grown to fill the card at
#                       first boot by upazila-growdata.service)
#     COMPRESS          1 (default): xz the result
#
# Needs, on a Debian/Ubuntu build host, as root: util-linux (losetup, sfdisk, partx),
# e2fsprogs, dosfstools, xz-utils, python3 (+ pip, to build the wheel), and on a non-arm64
# host qemu-user-static + binfmt-support. The chroot downloads packages (Raspberry Pi OS
# apt repositories, PyPI): the build host needs the internet. See image/README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
base=${1:?usage: build.sh BASE_IMAGE [OUT]}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml")
out=${2:-$here/out/upazila-hub-$version-arm64.img}
ROOT_EXTRA_MB=${ROOT_EXTRA_MB:-1024}
DATA_MB=${DATA_MB:-512}
COMPRESS=${COMPRESS:-1}
DATA_LABEL=hubdata                 # systemd/var-lib-upazila\x2dhub.mount mounts this label
DATA_DIR=/var/lib/upazila-hub      # and here
SECTOR=512
ALIGN=8192                         # 4 MiB: SD erase blocks

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (loop devices, mounts, chroot)"
for tool in losetup sfdisk partx e2fsck resize2fs mkfs.ext4 xz python3 findmnt; do
  command -v "$tool" >/dev/null || die "missing $tool"
done
[[ -f $base ]] || die "no base image $base"
if [[ -n ${BASE_SHA256:-} ]]; then
  echo "$BASE_SHA256  $base" | sha256sum -c --quiet - || die "$base: SHA-256 mismatch"
fi
if [[ $(uname -m) != aarch64 ]]; then
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] ||
    die "no binfmt handler for arm64: apt-get install qemu-user-static binfmt-support"
fi

work=$(mktemp -d /tmp/upazila-image.XXXXXX)
mnt=$work/root
loop=
cleanup() {
  set +e
  for m in "$mnt/dev/pts" "$mnt/dev" "$mnt/proc" "$mnt/sys" "$mnt$DATA_DIR" \
           "$mnt/boot/firmware" "$mnt"; do
    mountpoint -q "$m" && umount "$m"
  done
  [[ -n $loop ]] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT

# 1. the appliance wheel -----------------------------------------------------------------
mkdir -p "$work/wheels"
if [[ -n ${WHEEL:-} ]]; then
  cp "$WHEEL" "$work/wheels/"
else
  log "building the appliance wheel from $repo"
  python3 -m pip wheel --quiet --no-deps --wheel-dir "$work/wheels" "$repo"
fi

# 2. the image file: base + room for root + a data partition --------------------------------
mkdir -p "$(dirname "$out")"
log "unpacking $base"
case $base in
  *.xz) xz -dc "$base" >"$out" ;;
  *) cp --sparse=always "$base" "$out" ;;
esac
truncate -s "+$((ROOT_EXTRA_MB + DATA_MB + 8))M" "$out"

# partx: "NR START SECTORS" of each partition; the official image has 1 boot, 2 root
read -r _ root_start root_sectors < <(partx -g -o NR,START,SECTORS -n 2 "$out")
[[ -n ${root_sectors:-} ]] || die "$base has no partition 2 (root)"
[[ -z $(partx -g -o NR -n 3 "$out" 2>/dev/null) ]] || die "$base already has a partition 3"
root_sectors=$((root_sectors + ROOT_EXTRA_MB * 1024 * 1024 / SECTOR))
data_start=$(((root_start + root_sectors + ALIGN - 1) / ALIGN * ALIGN))
root_sectors=$((data_start - root_start))
echo "$root_start,$root_sectors" | sfdisk --quiet --no-reread --no-tell-kernel -N 2 "$out"
echo "$data_start,+,L" | sfdisk --quiet --no-reread --no-tell-kernel --append "$out"

loop=$(losetup --find --show --partscan "$out")
for p in 1 2 3; do
  for _ in $(seq 50); do [[ -b ${loop}p$p ]] && break; sleep 0.1; done
  [[ -b ${loop}p$p ]] || die "${loop}p$p did not appear"
done
e2fsck -fy "${loop}p2" >/dev/null || [[ $? -le 1 ]] || die "e2fsck of the root failed"
resize2fs "${loop}p2"
# a 64 MiB journal: with data=journal every write passes through it
mkfs.ext4 -q -F -L "$DATA_LABEL" -m 1 -J size=64 "${loop}p3"

# 3. mount and prepare the chroot -------------------------------------------------------------
mkdir -p "$mnt"
mount "${loop}p2" "$mnt"
mount "${loop}p1" "$mnt/boot/firmware"
mkdir -p "$mnt$DATA_DIR"
mount -o data=journal,commit=5 "${loop}p3" "$mnt$DATA_DIR"
mount -t proc proc "$mnt/proc"
mount -t sysfs sys "$mnt/sys"
mount --bind /dev "$mnt/dev"
mount --bind /dev/pts "$mnt/dev/pts"
if [[ $(uname -m) != aarch64 ]] &&
   ! grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
  cp /usr/bin/qemu-aarch64-static "$mnt/usr/bin/"   # old binfmt without the F flag
fi
cp --remove-destination /etc/resolv.conf "$mnt/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$mnt/usr/sbin/policy-rc.d"   # start no service in here
chmod +x "$mnt/usr/sbin/policy-rc.d"

# 4. our files ---------------------------------------------------------------------------------
install -d "$mnt/tmp/upazila"
cp "$work"/wheels/*.whl "$mnt/tmp/upazila/"
install -m 0755 "$here/chroot-setup.sh" "$mnt/tmp/upazila/"
cp -r --preserve=mode "$here/rootfs/." "$mnt/"   # owned by root, whoever checked out
install -m 0644 "$repo"/systemd/*.service "$repo"/systemd/*.mount "$mnt/etc/systemd/system/"
install -d "$mnt/etc/systemd/journald.conf.d" "$mnt/etc/systemd/system.conf.d"
install -m 0644 "$repo"/systemd/journald.conf.d/*.conf "$mnt/etc/systemd/journald.conf.d/"
install -m 0644 "$repo"/systemd/system.conf.d/*.conf "$mnt/etc/systemd/system.conf.d/"
install -d "$mnt/opt/upazila-hub/provisioning" "$mnt/opt/upazila-hub/image"
install -m 0644 "$repo/README.md" "$mnt/opt/upazila-hub/README.md"
install -m 0644 "$repo/provisioning/README.md" "$mnt/opt/upazila-hub/provisioning/README.md"
install -m 0644 "$here/README.md" "$mnt/opt/upazila-hub/image/README.md"
if [[ -n ${ADMIN_SSH_PUBKEY:-} ]]; then
  install -m 0644 "$ADMIN_SSH_PUBKEY" "$mnt/tmp/upazila/admin.pub"
fi

# 5. inside the image ----------------------------------------------------------------------
log "configuring the image (chroot; slow under qemu)"
chroot "$mnt" /tmp/upazila/chroot-setup.sh
rm -rf "$mnt/tmp/upazila" "$mnt/usr/sbin/policy-rc.d" "$mnt/usr/bin/qemu-aarch64-static"

# 6. the boot partition -----------------------------------------------------------------------
cmdline="$mnt/boot/firmware/cmdline.txt"
# raspberrypi-sys-mods' first boot grows the root to the end of the card; ours grows the
# data partition instead (upazila-growdata.service), so that script must not run
sed -i -e 's# init=/usr/lib/raspberrypi-sys-mods/firstboot##' \
       -e 's# overlayroot=[^ ]*##' -e 's#$# overlayroot=tmpfs:recurse=0#' "$cmdline"
# the drop point the IT focal points look for when they open the card on a laptop
cat >"$mnt/boot/firmware/upazila-hub-README.txt" <<'EOF'
Upazila hub: put this upazila's provisioning file here, named  upazila-hub.toml ,
then put the card in the hub and switch it on. The hub installs the file, then renames
it upazila-hub.toml.applied (secrets removed). If the hub refuses the file, it writes
upazila-hub-ERROR.txt here saying why.
EOF

sync
log "image ready: $out"
trap - EXIT
cleanup
if [[ $COMPRESS == 1 ]]; then
  xz -T0 -f "$out"
  log "compressed: $out.xz"
fi
