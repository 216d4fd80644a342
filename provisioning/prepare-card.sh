#!/bin/bash
# Write the hub SD image to a card and put one upazila's provisioning file on it, on a
# Linux laptop. (On Windows: write the image with Raspberry Pi Imager, "Use custom",
# then copy the .toml file onto the "bootfs" drive as upazila-hub.toml.)
#
#   sudo provisioning/prepare-card.sh upazila-hub-0.1.0-arm64.img.xz /dev/sdX coxs-bazar-ramu.toml
#
# It refuses a device that is not removable, or that is mounted as / or /boot on this
# laptop. Everything on the card is erased.
set -euo pipefail

die() { echo "prepare-card: $*" >&2; exit 1; }
[[ $# -eq 3 ]] || die "usage: prepare-card.sh IMAGE(.img|.img.xz) /dev/DEVICE PROVISIONING.toml"
image=$1 dev=$2 prov=$3
[[ $(id -u) -eq 0 ]] || die "run with sudo (it writes a whole device)"
[[ -f $image ]] || die "no image $image"
[[ -f $prov ]] || die "no provisioning file $prov"
[[ -b $dev ]] || die "$dev is not a block device"
name=$(basename "$dev")
[[ $(cat "/sys/block/$name/removable" 2>/dev/null || echo 0) == 1 ]] ||
  [[ $name == mmcblk* ]] || die "$dev is not a removable card; refusing"
if lsblk -n -o MOUNTPOINT "$dev" | grep -Eqx '/|/boot|/boot/efi|/home'; then
  die "$dev holds this laptop's own system; refusing"
fi
grep -q '^\[hub\]' "$prov" || die "$prov does not look like a provisioning file (no [hub])"
if grep -q 'PASTE-THIS-HUB-PERSONAL-ACCESS-TOKEN-HERE' "$prov"; then
  die "$prov still has the placeholder in [national] token: paste the hub's token first"
fi

echo "Erasing $dev ($(lsblk -d -n -o SIZE,MODEL "$dev" | xargs)) and writing $image"
read -r -p "Type YES to continue: " answer
[[ $answer == YES ]] || die "stopped"
# unmount whatever the desktop auto-mounted from the card
lsblk -n -o MOUNTPOINT "$dev" | sed '/^$/d' | while read -r m; do umount "$m"; done
case $image in
  *.xz) xz -dc "$image" | dd of="$dev" bs=4M conv=fsync status=progress ;;
  *) dd if="$image" of="$dev" bs=4M conv=fsync status=progress ;;
esac
partprobe "$dev" 2>/dev/null || blockdev --rereadpt "$dev"
sleep 2

boot=$(lsblk -n -o PATH,LABEL "$dev" | awk '$2 == "bootfs" {print $1}')
[[ -n $boot ]] || die "no bootfs partition on $dev after writing"
mnt=$(mktemp -d)
mount "$boot" "$mnt"
install -m 0600 "$prov" "$mnt/upazila-hub.toml"
sync
umount "$mnt"
rmdir "$mnt"
echo "Done: $dev has the hub image and $(basename "$prov") as upazila-hub.toml."
echo "Put the card in the hub and switch it on; see provisioning/README.md for the LEDs."
