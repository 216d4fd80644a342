#!/bin/bash
# Build the upazila hub SD image from Debian's archive alone: no Raspberry Pi OS download,
# no loop devices, no vfat driver on the build host (the kernels of CI and of many build
# servers have neither an MBR partition reader nor vfat).
#
#   image/build.sh [--arch arm64|amd64] [--out DIR] [--no-compress]      (make image)
#
# 1. the appliance wheel, built from this checkout, and its locked dependencies
#    (image/requirements.lock) as wheels for the target from PyPI;
# 2. the Debian root (mmdebstrap, image/packages.txt): cached as a tarball keyed by its
#    inputs, so a second build with the same inputs downloads nothing;
# 3. our layer, in a chroot (arm64 through qemu-user-static and binfmt): image/setup.sh;
# 4. the file systems made from directories (mkfs.ext4 -d, mkfs.fat + mtools) and laid out
#    with sfdisk into one card image: boot, root A, root B, data (image/README.md);
# 5. a manifest (git commit, Debian packages and Python wheels with versions, the archive's
#    date), the image's sha256, the root slot as an ext4 file for `make bundle`, and xz.
#
# Environment:
#   MIRROR            Debian mirror (default http://deb.debian.org/debian)
#   SNAPSHOT          e.g. 20261201T000000Z: build from snapshot.debian.org at that time,
#                     the way to rebuild the same image later (reproducible builds)
#   SOURCE_DATE_EPOCH every timestamp in the image (default: the git commit's time)
#   ADMIN_SSH_PUBKEY  national's SSH public key for `hubadmin` (key only, sudo); without
#                     it the image has no login at all and sshd stays off
#   UPDATE_KEYRING    the CA certificate (PEM) update bundles must be signed under
#                     (default: the development CA image/sign-dev.sh makes, with a warning)
#   IMAGE_CACHE       where base tarballs and wheels are kept (default /var/cache/upazila-image)
#   ROOT_MB DATA_MB BOOT_MB   slot, initial data and boot partition sizes (arm64: each slot's
#                     boot partition; BOOTSEL_MB its first partition, autoboot.txt's)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
arch=arm64
outdir=$here/out
compress=1
while (($#)); do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --out) outdir=$2; shift 2 ;;
    --no-compress) compress=0; shift ;;
    *) echo "usage: $0 [--arch arm64|amd64] [--out DIR] [--no-compress]" >&2; exit 2 ;;
  esac
done
case $arch in
  amd64) pyarch=x86_64 ;;
  arm64) pyarch=aarch64 ;;
  *) echo "build.sh: --arch must be arm64 or amd64, not $arch" >&2; exit 2 ;;
esac

MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
ROOT_MB=${ROOT_MB:-1536}
DATA_MB=${DATA_MB:-256}
BOOT_MB=${BOOT_MB:-256}
BOOTSEL_MB=${BOOTSEL_MB:-64}
IMAGE_CACHE=${IMAGE_CACHE:-/var/cache/upazila-image}
# the card's MBR disk id: partitions are PARTUUID=7570617a-0N ("upaz"), the same on every
# card, so the boot loader, fstab and RAUC name slots without probing
DISK_ID=0x7570617a
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml")
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit-dirty"
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
name=upazila-hub-$version-$arch

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: [$(date +%T)] $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap and the chroot need it; no loop devices are used)"
for tool in mmdebstrap mkfs.ext4 debugfs dumpe2fs mkfs.fat mcopy mmd sfdisk xz python3 sha256sum; do
  command -v "$tool" >/dev/null || die "missing $tool: run scripts/install-system-deps image"
done

# arm64 on another machine: the chroot runs arm64 programs through qemu-user-static, which
# binfmt_misc must know with the F flag (the interpreter opened at registration, so it
# works inside the chroot without a copy there)
if [[ $arch == arm64 && $(uname -m) != aarch64 ]]; then
  mountpoint -q /proc/sys/fs/binfmt_misc ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
    die "cannot mount binfmt_misc (needed to run arm64 programs in the chroot)"
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 2>/dev/null ||
      update-binfmts --import qemu-aarch64 2>/dev/null || true
  fi
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null ||
    die "no binfmt handler with the F flag for arm64: apt-get install qemu-user-static binfmt-support"
fi

work=$(mktemp -d /tmp/upazila-image.XXXXXX)
root=$work/root
cleanup() {
  set +e
  for m in "$root/dev/pts" "$root/dev" "$root/proc" "$root/sys"; do
    mountpoint -q "$m" && umount -l "$m"
  done
  # never rm -rf through a mount that is still there (the host's /dev or /proc)
  if findmnt -rn -o TARGET | grep -q "^$work/"; then
    echo "build.sh: $work still has mounts; not removing it" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
mkdir -p "$outdir" "$IMAGE_CACHE"

# 1. wheels -------------------------------------------------------------------------------
log "wheels: the appliance ($commit) and image/requirements.lock for $pyarch"
wheels=$work/wheels
mkdir -p "$wheels"
# from a copy of the checkout's files (tracked, and new ones not ignored), not the checkout
# itself: setuptools keeps build/lib in the tree, and a module or migration renamed since
# the last build stayed in it and went into the wheel (a card whose hub then failed every
# start on a migration applied twice)
src=$work/src
python3 - "$repo" "$src" <<'PY'
import os, shutil, subprocess, sys
repo, dst = sys.argv[1:]
names = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], capture_output=True, check=True).stdout
for name in filter(None, names.split(b"\0")):
    rel = os.fsdecode(name)
    path = os.path.join(repo, rel)
    if os.path.isfile(path) and not os.path.islink(path):  # a file deleted but still tracked: left out
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copy2(path, os.path.join(dst, rel))
PY
python3 -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$wheels" "$src" 2>/dev/null ||
  python3 -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$src"
platforms=(--platform "manylinux2014_$pyarch" --platform "linux_$pyarch")
for v in $(seq 17 36); do platforms+=(--platform "manylinux_2_${v}_$pyarch"); done  # glibc 2.36
wcache=$IMAGE_CACHE/wheels-$pyarch
mkdir -p "$wcache"
python3 -m pip download --quiet --no-deps --only-binary=:all: "${platforms[@]}" \
  --python-version 3.11 --implementation cp --dest "$wcache" \
  -r "$here/requirements.lock" 2>&1 | grep -v '^WARNING: Location' >&2 || true
cp "$wcache"/*.whl "$wheels/"
# every locked package must have its wheel (pip download's own errors went by above)
while read -r req; do
  [[ -z $req || $req == \#* ]] && continue
  pkg=${req%%==*}; ver=${req#*==}
  norm=$(tr '[:upper:]-.' '[:lower:]__' <<<"$pkg")
  find "$wheels" -maxdepth 1 -iname "${norm}-${ver}-*.whl" | grep -q . ||
    die "no $pyarch wheel for $req (image/requirements.lock)"
done <"$here/requirements.lock"

# 2. the Debian root, cached by its inputs -----------------------------------------------
packages=$(awk -v a="$arch" '/^# arch:/ {sec=$3; next} /^#/ || NF==0 {next}
  sec=="" || sec==a {print $1}' "$here/packages.txt" | paste -sd, -)
if [[ -n ${SNAPSHOT:-} ]]; then
  MIRROR=http://snapshot.debian.org/archive/debian/$SNAPSHOT
fi
# shellcheck disable=SC2016,SC2054  # $1 is mmdebstrap's, in its hooks; commas are its list syntax
mm=(--mode=root --format=tar --variant=apt --arch="$arch"
    --components=main,non-free-firmware
    --aptopt='Acquire::Retries "5"' --aptopt='APT::Install-Recommends "false"'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/bn*'
    --dpkgopt='path-exclude=/etc/kernel/postinst.d/initramfs-tools'
    --essential-hook='mkdir -p "$1/boot/firmware"'
    --include="$packages"
    --customize-hook='sed -n "s/^Date: //p" "$1"/var/lib/apt/lists/*_InRelease | head -n1 >"$1/etc/upazila-archive-date"')
# keyed by what mmdebstrap is given, not by the rest of this recipe: editing a later step
# must not fetch the whole archive again. The kernel package makes no initramfs here (its
# hook is left out): setup.sh makes the one the image boots, with our hooks, once; under
# qemu-user each mkinitramfs of Debian's arm64 kernel takes over 10 minutes
key=$(printf '%s\n' "$SUITE" "$MIRROR" "$(mmdebstrap --version)" "${mm[@]}" |
      sha256sum | cut -c1-16)
base=$IMAGE_CACHE/base-$arch-$key.tar
if [[ ! -s $base ]]; then
  log "mmdebstrap $SUITE $arch from $MIRROR (cached afterwards as $(basename "$base"))"
  mmdebstrap "${mm[@]}" "$SUITE" "$work/base.tar" "$MIRROR"
  mv "$work/base.tar" "$base"
else
  log "base root from the cache: $(basename "$base")"
fi

# 3. our layer ---------------------------------------------------------------------------
log "unpacking the base and adding the appliance"
mkdir -p "$root"
tar --numeric-owner --xattrs --xattrs-include='*' -xpf "$base" -C "$root"
install -d "$root/tmp/upazila"
cp "$wheels"/*.whl "$root/tmp/upazila/"
install -m 0755 "$here/setup.sh" "$root/tmp/upazila/setup.sh"
install -m 0644 "$here/grub.cfg.in" "$root/tmp/upazila/grub.cfg.in"
cp -r "$here/tryboot" "$root/tmp/upazila/tryboot"
cp -r --preserve=mode "$here/rootfs/." "$root/"
install -m 0644 "$repo"/systemd/*.service "$root/etc/systemd/system/"
install -d "$root/etc/systemd/journald.conf.d" "$root/etc/systemd/system.conf.d"
install -m 0644 "$repo"/systemd/journald.conf.d/*.conf "$root/etc/systemd/journald.conf.d/"
install -m 0644 "$repo"/systemd/system.conf.d/*.conf "$root/etc/systemd/system.conf.d/"
install -d "$root/opt/upazila-hub/provisioning" "$root/opt/upazila-hub/image"
install -m 0644 "$repo/README.md" "$root/opt/upazila-hub/README.md"
install -m 0644 "$repo/provisioning/README.md" "$root/opt/upazila-hub/provisioning/README.md"
install -m 0644 "$here/README.md" "$root/opt/upazila-hub/image/README.md"
[[ -n ${ADMIN_SSH_PUBKEY:-} ]] && install -m 0644 "$ADMIN_SSH_PUBKEY" "$root/tmp/upazila/admin.pub"
keyring=${UPDATE_KEYRING:-}
if [[ -z $keyring ]]; then
  "$here/sign-dev.sh" "$IMAGE_CACHE/dev-signing" >/dev/null
  keyring=$IMAGE_CACHE/dev-signing/ca.cert.pem
  log "WARNING: update bundles are trusted under the development CA ($keyring);" \
      "set UPDATE_KEYRING to national's for hubs in the field"
fi
install -D -m 0644 "$keyring" "$root/etc/rauc/keyring.pem"
cat >"$root/etc/upazila-hub-release" <<EOF
VERSION=$version
COMMIT=$commit
ARCH=$arch
BUILT=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
EOF

mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
log "configuring the root in a chroot (image/setup.sh)"
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
  ARCH="$arch" VERSION="$version" COMMIT="$commit" DISK_ID="$DISK_ID" \
  SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" /tmp/upazila/setup.sh
# shellcheck disable=SC2016  # dpkg-query's format, not the shell's
chroot "$root" dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n' >"$work/packages.tsv"
chroot "$root" /opt/upazila-hub/venv/bin/python -m pip list --format=freeze \
  --disable-pip-version-check >"$work/wheels.txt" 2>/dev/null
for m in "$root/dev/pts" "$root/dev" "$root/proc" "$root/sys"; do umount -l "$m"; done
rm -rf "$root/tmp/upazila" "$root/tmp"/* "$root/var/tmp"/* "$root/var/cache/apt"/*.bin \
       "$root/var/lib/apt/lists"/* "$root/var/log"/*.log "$root/var/cache/ldconfig/aux-cache"

# the partitions' contents: the boot partition's files and the data partition's first state
# were staged by setup.sh in /boot/firmware and /var/lib/upazila-hub
boot=$work/boot data=$work/data
mv "$root/boot/firmware" "$boot" && install -d "$root/boot/firmware"
mv "$root/var/lib/upazila-hub" "$data" && install -d -m 0755 "$root/var/lib/upazila-hub"
if [[ $arch == arm64 ]]; then
  # the Pi's A/B (image/README.md): partition 1 holds autoboot.txt, which names the slot's
  # boot partition the firmware boots (2 or 3; upazila-rauc-tryboot rewrites it), the drop
  # point, and bootcode.bin (the Pi 3B+ reads it from partition 1 only). $boot becomes slot
  # A's boot partition, and the .boot.vfat that update bundles carry
  bootsel=$work/bootsel
  install -d "$bootsel"
  mv "$boot/upazila-hub-README.txt" "$bootsel/"
  cp -p "$boot/bootcode.bin" "$bootsel/"
  printf '[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=2\n' \
    >"$bootsel/autoboot.txt"
fi

# 4. file systems and the card -------------------------------------------------------------
log "file systems (mkfs.ext4 -d, mkfs.fat + mtools) and the card layout (sfdisk)"
# every timestamp at SOURCE_DATE_EPOCH, fixed UUIDs and hash seeds: the same inputs give
# the same bytes (image/README.md lists what still differs)
find "$root" "$boot" "$data" ${bootsel:+"$bootsel"} -newermt "@$SOURCE_DATE_EPOCH" -print0 |
  xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
uuid() { printf '%s' "$1" | sha256sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/'; }
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
# mkfs.ext4 -d copies each inode's ctime and atime from the build tree, where they are when
# this build wrote or last read the file (touch cannot set a ctime): pin both afterwards
pin_times() {  # pin_times FILE
  local used ts
  used=$(dumpe2fs -h "$1" 2>/dev/null |
         awk -F: '/^Inode count/ {n = $2} /^Free inodes/ {f = $2} END {print n - f}')
  ts=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S)
  seq 1 "$used" | sed "s/.*/sif <&> ctime $ts\nsif <&> atime $ts/" >"$work/pin-times"
  debugfs -w -f "$work/pin-times" "$1" >/dev/null 2>&1
}
mkext4() {  # mkext4 LABEL SIZE_MB DIR FILE
  rm -f "$4"
  mkfs.ext4 -q -F -L "$1" -U "$(uuid "$1-$version-$commit")" -T default -m 1 \
    -E "hash_seed=$(uuid "seed-$1"),root_owner=0:0" -d "$3" "$4" "$2M"
  pin_times "$4"
}
mkext4 "root-$version" "$ROOT_MB" "$root" "$work/root.ext4"
mkfs.ext4 -q -F -L hubdata -U "$(uuid "hubdata-$version-$commit")" -m 1 -J size=32 \
  -E "hash_seed=$(uuid seed-hubdata),root_owner=0:0" -d "$data" "$work/data.ext4" "${DATA_MB}M"
pin_times "$work/data.ext4"
mkfat() {  # mkfat LABEL VOLUME_ID SIZE_MB DIR FILE
  rm -f "$5"
  mkfs.fat -C -F 32 -n "$1" -i "$2" --invariant "$5" $(($3 * 1024)) >/dev/null
  (cd "$4" && find . -mindepth 1 -type d | sort | sed 's#^\./##' |
     while read -r d; do MTOOLS_SKIP_CHECK=1 mmd -i "$5" "::$d"; done
   find . -type f | sort | sed 's#^\./##' |
     while read -r f; do MTOOLS_SKIP_CHECK=1 mcopy -m -i "$5" "$f" "::$f"; done)
}

# MBR (the Pi 3B+ boots nothing else), 4 MiB aligned for SD erase blocks; the slots that
# are B's stay empty until the first update
#   amd64: 1 boot FAT (ESP: GRUB), 2 root A, 3 root B, 4 data
#   arm64: 1 FAT (autoboot.txt, the drop point), 2 boot A, 3 boot B, 4 extended: 5 root A,
#          6 root B, 7 data (the Pi firmware boots primary partitions only)
img=$outdir/$name.img
put() { dd if="$1" of="$img" bs=1M seek="$2" conv=notrunc,sparse status=none; }
if [[ $arch == amd64 ]]; then
  mkfat HUBBOOT 7570617a "$BOOT_MB" "$boot" "$work/boot.fat"
  boot_start=4 root_a=$((4 + BOOT_MB)) root_b=$((4 + BOOT_MB + ROOT_MB))
  data_start=$((4 + BOOT_MB + 2 * ROOT_MB))
  total=$((data_start + DATA_MB))
  rm -f "$img" && truncate -s "${total}M" "$img"
  sfdisk --quiet "$img" <<EOF
label: dos
label-id: $DISK_ID
unit: sectors
start=$((boot_start * 2048)), size=$((BOOT_MB * 2048)), type=ef, bootable
start=$((root_a * 2048)), size=$((ROOT_MB * 2048)), type=83
start=$((root_b * 2048)), size=$((ROOT_MB * 2048)), type=83
start=$((data_start * 2048)), type=83
EOF
  put "$work/boot.fat" "$boot_start"
  layout="boot ${BOOT_MB}M, root A ${ROOT_MB}M, root B ${ROOT_MB}M, data ${DATA_MB}M+ (PARTUUID ${DISK_ID#0x}-01..04)"
else
  mkfat HUBBOOT 7570617a "$BOOTSEL_MB" "$bootsel" "$work/boot.fat"
  mkfat HUBSYSTEM 75706102 "$BOOT_MB" "$boot" "$work/slot-boot.fat"
  boot_start=4 slot_boot_a=$((4 + BOOTSEL_MB)) slot_boot_b=$((4 + BOOTSEL_MB + BOOT_MB))
  ext_start=$((4 + BOOTSEL_MB + 2 * BOOT_MB))
  # each logical partition's EBR sits in the 4 MiB before it
  root_a=$((ext_start + 4)) root_b=$((ext_start + 8 + ROOT_MB))
  data_start=$((ext_start + 12 + 2 * ROOT_MB))
  total=$((data_start + DATA_MB))
  rm -f "$img" && truncate -s "${total}M" "$img"
  sfdisk --quiet "$img" <<EOF
label: dos
label-id: $DISK_ID
unit: sectors
start=$((boot_start * 2048)), size=$((BOOTSEL_MB * 2048)), type=0c, bootable
start=$((slot_boot_a * 2048)), size=$((BOOT_MB * 2048)), type=0c
start=$((slot_boot_b * 2048)), size=$((BOOT_MB * 2048)), type=0c
start=$((ext_start * 2048)), type=05
start=$((root_a * 2048)), size=$((ROOT_MB * 2048)), type=83
start=$((root_b * 2048)), size=$((ROOT_MB * 2048)), type=83
start=$((data_start * 2048)), type=83
EOF
  put "$work/boot.fat" "$boot_start"
  put "$work/slot-boot.fat" "$slot_boot_a"
  layout="autoboot ${BOOTSEL_MB}M, boot A ${BOOT_MB}M, boot B ${BOOT_MB}M, root A ${ROOT_MB}M, root B ${ROOT_MB}M, data ${DATA_MB}M+ (PARTUUID ${DISK_ID#0x}-01..03, -05..07)"
fi
put "$work/root.ext4" "$root_a"
put "$work/data.ext4" "$data_start"

# 5. manifest, checksums, compression ---------------------------------------------------------
{
  echo "# $name"
  echo "version: $version"
  echo "commit: $commit"
  echo "arch: $arch"
  echo "source_date_epoch: $SOURCE_DATE_EPOCH"
  echo "mirror: $MIRROR"
  echo "suite: $SUITE"
  echo "archive_date: $(cat "$root/etc/upazila-archive-date" 2>/dev/null)"
  echo "base: $(basename "$base") $(sha256sum "$base" | cut -c1-64)"
  echo "layout: $layout"
  echo "root_ext4_sha256: $(sha256sum "$work/root.ext4" | cut -c1-64)"
  echo "## debian packages"
  cat "$work/packages.tsv"
  echo "## python wheels (/opt/upazila-hub/venv)"
  cat "$work/wheels.txt"
} >"$outdir/$name.manifest"
cp --sparse=always "$work/root.ext4" "$outdir/$name.rootfs.ext4"
[[ $arch == arm64 ]] && cp --sparse=always "$work/slot-boot.fat" "$outdir/$name.boot.vfat"
(cd "$outdir" && sha256sum "$name.img" >"$name.img.sha256")
if ((compress)); then
  log "xz"
  xz -T0 -6 -f "$img"
  (cd "$outdir" && sha256sum "$name.img.xz" >"$name.img.xz.sha256")
fi
log "done: $(find "$outdir" -maxdepth 1 -name "$name.img*" -printf '%f ')"
