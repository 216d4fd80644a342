#!/bin/bash
# Runs inside the image's root (a chroot; arm64 through qemu-user-static), called by
# build.sh with ARCH, VERSION, COMMIT, DISK_ID and SOURCE_DATE_EPOCH. Our wheels are in
# /tmp/upazila; image/rootfs/ is already copied over /. What it leaves in /boot/firmware
# becomes the boot partition, and in /var/lib/upazila-hub the data partition's first state.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
DATA=/var/lib/upazila-hub
SYS=$DATA/system          # what the read-only root keeps on the data partition
VENV=/opt/upazila-hub/venv
PART=${DISK_ID#0x}        # PARTUUID prefix: 7570617a-NN, the card's partition NN
# the card (image/README.md): amd64 1 boot (GRUB), 2 root A, 3 root B, 4 data; arm64 (the
# Pi's tryboot) 1 autoboot.txt, 2 and 3 slot A's and B's boot files, 4 extended, 5 root A,
# 6 root B, 7 data
if [[ $ARCH == arm64 ]]; then ROOT_A=05 ROOT_B=06 DATA_PART=07; else ROOT_A=02 ROOT_B=03 DATA_PART=04; fi

# --- users and groups, before any unit names them -------------------------------------------
# upazila-hub.service has SupplementaryGroups=gpio video i2c: a group that does not exist
# fails the unit (seen on x86), so all three exist on every architecture
for g in gpio i2c spi; do getent group "$g" >/dev/null || groupadd --system "$g"; done
useradd --system --user-group --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin \
        --groups gpio,video,i2c hub
# no account has a password anyone could guess: root and every other one locked; admin
# access is national's SSH key only (below)
passwd --lock root >/dev/null

# --- the appliance, from the wheels built in the same run -----------------------------------
python3 -m venv "$VENV"
extra=(); [[ $ARCH == arm64 ]] && extra=(lgpio)   # gpiozero's pin factory on the Pi
"$VENV/bin/pip" install --quiet --no-index --find-links /tmp/upazila --no-cache-dir \
  --disable-pip-version-check upazila-hub "${extra[@]}"
"$VENV/bin/appliance" --version
"$VENV/bin/litestream" version >/dev/null
# the LAN resolver runs as hub under supervisord; only this copy of dnsmasq holds the
# capabilities DHCP needs (file capabilities; the Python programs never hold them)
install -d -m 0755 /opt/upazila-hub/bin
install -o root -g hub -m 0750 /usr/sbin/dnsmasq /opt/upazila-hub/bin/dnsmasq
setcap cap_net_bind_service,cap_net_admin,cap_net_raw+ep /opt/upazila-hub/bin/dnsmasq
systemctl disable hostapd.service 2>/dev/null || true

# --- the data partition's first state (build.sh makes it the "hubdata" ext4) ----------------
install -d -o hub -g hub -m 0750 "$DATA"
install -d -o root -g hub -m 0750 "$DATA/etc"
install -d -m 0755 "$SYS"
rm -rf /etc/upazila-hub && ln -s "$DATA/etc" /etc/upazila-hub
# /var/log (the journal, capped) and /var/lib/systemd (timesyncd's last known time: the Pi
# has no RTC; random seed) live on the data partition: the initramfs binds them over the
# read-only root before systemd starts (rootfs/etc/initramfs-tools/scripts/local-bottom)
install -d -m 2755 -g systemd-journal /var/log/journal
cp -a /var/log "$SYS/var-log"
cp -a /var/lib/systemd "$SYS/var-lib-systemd"
# a machine-id made at first boot, kept on the data partition (initramfs, as above); the
# empty file is where it is bound
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id && ln -s /etc/machine-id /var/lib/dbus/machine-id

# --- SSH: national's key only; host keys made on first boot, before sshd checks them -------
rm -f /etc/ssh/ssh_host_*   # made by openssh-server's postinst: the same on every card
if [[ -f /tmp/upazila/admin.pub ]]; then
  useradd --create-home --groups sudo --shell /bin/bash hubadmin
  passwd --lock hubadmin >/dev/null
  install -d -o hubadmin -g hubadmin -m 0700 /home/hubadmin/.ssh
  install -o hubadmin -g hubadmin -m 0600 /tmp/upazila/admin.pub /home/hubadmin/.ssh/authorized_keys
  echo 'hubadmin ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/010-hubadmin
  chmod 0440 /etc/sudoers.d/010-hubadmin
  systemctl enable ssh.service upazila-ssh-keys.service
else
  systemctl disable ssh.service
fi
systemctl mask ssh.socket 2>/dev/null || true

# --- network: DHCP on the wired LAN (systemd-networkd), resolved for the hub's own lookups --
ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service
echo hub >/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\thub\n::1\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts
ln -sf /usr/share/zoneinfo/Asia/Dhaka /etc/localtime
echo Asia/Dhaka >/etc/timezone

# --- units --------------------------------------------------------------------------------
systemctl enable upazila-growdata.service upazila-firstboot.service upazila-hub.service \
                 upazila-boot-report.service upazila-reboot.path upazila-poweroff.path \
                 upazila-update-guard.service
# nothing to update on a read-only root, and no writes to the card for it; dpkg's daily
# backup of its own database fails there (and logged 14 journal lines doing so)
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
               e2scrub_reap.service fstrim.timer dpkg-db-backup.timer 2>/dev/null || true

# --- RAUC: the A/B slots ------------------------------------------------------------------
# amd64: GRUB's grubenv; arm64: autoboot.txt and the firmware's tryboot through our custom
# backend, each root slot with its boot partition as a child slot (RAUC writes both)
bootloader=grub; [[ $ARCH == arm64 ]] && bootloader=custom
sed -e "s/@ARCH@/$ARCH/g" -e "s/@PART@/$PART/g" -e "s/@BOOTLOADER@/$bootloader/" \
    -e "s/@ROOT_A@/$ROOT_A/g" -e "s/@ROOT_B@/$ROOT_B/g" \
    /etc/rauc/system.conf.in >/etc/rauc/system.conf
rm /etc/rauc/system.conf.in
if [[ $ARCH == arm64 ]]; then
  sed -i '/^grubenv=/d' /etc/rauc/system.conf
  cat >>/etc/rauc/system.conf <<EOF

[handlers]
bootloader-custom-backend=/usr/local/sbin/upazila-rauc-tryboot

[slot.boot.0]
device=/dev/disk/by-partuuid/$PART-02
type=vfat
parent=rootfs.0

[slot.boot.1]
device=/dev/disk/by-partuuid/$PART-03
type=vfat
parent=rootfs.1
EOF
  # Debian's kernel cannot pass the trial reboot's "0 tryboot" to the firmware: our module
  # does (image/tryboot), built here against this very kernel; udev loads it on a Pi
  kver=$(basename /lib/modules/*)
  make -s -C "/usr/src/linux-headers-$kver" M=/tmp/upazila/tryboot modules
  strip --strip-debug /tmp/upazila/tryboot/upazila_tryboot.ko
  install -D -m 0644 /tmp/upazila/tryboot/upazila_tryboot.ko \
    "/lib/modules/$kver/updates/upazila_tryboot.ko"
  depmod "$kver"
  # the compiler and headers are for the build only (packages.txt)
  apt-get purge -y -q --autoremove linux-headers-arm64 "linux-headers-$kver" gcc make \
    >/dev/null
else
  rm /usr/local/sbin/upazila-rauc-tryboot
fi
# the initramfs mounts the data partition by its PARTUUID
sed -i "s/$PART-04/$PART-$DATA_PART/" /etc/initramfs-tools/scripts/local-bottom/upazila-data
install -d -m 0755 "$SYS/rauc"

# --- boot -----------------------------------------------------------------------------------
# the kernel command line: root A read-only; build.sh/grub.cfg choose the slot
cmdline="ro rootwait fsck.repair=yes net.ifnames=0 panic=10 quiet"
if [[ $ARCH == amd64 ]]; then
  install -d /boot/firmware/EFI/BOOT
  grub-mkimage -O x86_64-efi -o /boot/firmware/EFI/BOOT/BOOTX64.EFI -p /EFI/BOOT \
    part_msdos part_gpt fat ext2 normal linux configfile loadenv test echo regexp \
    serial terminal search search_label gzio all_video efi_gop sleep
  sed -e "s/@PART@/$PART/g" -e "s/@CMDLINE@/$cmdline/" /tmp/upazila/grub.cfg.in \
    >/boot/firmware/EFI/BOOT/grub.cfg
  # RAUC's GRUB contract: ORDER, <slot>_OK, <slot>_TRY (rauc writes them; grub.cfg reads)
  env=/boot/firmware/EFI/BOOT/grubenv
  grub-editenv "$env" create
  grub-editenv "$env" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
else
  # Debian's raspi-firmware writes config.txt, cmdline.txt, the firmware, the DTBs, the
  # kernel and the initramfs to /boot/firmware from its kernel hooks
  cat >/etc/default/raspi-firmware-custom <<'EOF'
# upazila hub: the watchdog, no Bluetooth (its UART is the console), no splash
dtparam=watchdog=on
dtoverlay=disable-bt
disable_splash=1
EOF
  sed -i -e "s/^#\?ROOTPART=.*/ROOTPART=PARTUUID=$PART-$ROOT_A/" \
         -e 's/^#\?CONSOLES=.*/CONSOLES="ttyS1,115200 tty0"/' /etc/default/raspi-firmware
  echo "$cmdline rauc.slot=A" >/etc/default/raspi-extra-cmdline
fi
# the base has none (build.sh leaves the kernel package's hook out): the one initramfs,
# with our hooks; its post-update hooks run raspi-firmware's on arm64
rm -f /boot/initrd.img-*
update-initramfs -c -k all
if [[ $ARCH == arm64 ]]; then
  # raspi-firmware writes "rw"; the root is read-only
  sed -i 's/ rw / ro /; s/ rw$/ ro/' /boot/firmware/cmdline.txt
  grep -q "root=PARTUUID=$PART-$ROOT_A .*rauc.slot=A" /boot/firmware/cmdline.txt
  # one boot partition image serves both slots (RAUC writes it to 2 or 3): the firmware's
  # [boot_partition=N] filter picks the slot's command line; cmdline.txt stays slot A's
  sed "s/$PART-$ROOT_A/$PART-$ROOT_B/; s/rauc.slot=A/rauc.slot=B/" /boot/firmware/cmdline.txt \
    >/boot/firmware/cmdline-b.txt
  cp /boot/firmware/cmdline.txt /boot/firmware/cmdline-a.txt
  config=$(cat /boot/firmware/config.txt)
  printf '%s\n' "# upazila hub: A/B (autoboot.txt on partition 1 chooses 2 or 3)" \
    "[boot_partition=2]" "cmdline=cmdline-a.txt" "[boot_partition=3]" "cmdline=cmdline-b.txt" \
    "[all]" "$config" >/boot/firmware/config.txt
fi

# the drop point the IT focal points look for when they open the card on a laptop
cat >/boot/firmware/upazila-hub-README.txt <<'EOF'
Upazila hub: put this upazila's provisioning file here, named  upazila-hub.toml ,
then put the card in the hub and switch it on. The hub installs the file, then renames
it upazila-hub.toml.applied (secrets removed). If the hub refuses the file, it writes
upazila-hub-ERROR.txt here saying why. If the hub does not start, it writes
upazila-hub-REPORT.txt here: send that file to the national team.
EOF

# every account locked or without a password field at all
if awk -F: '$2 !~ /^[!*]/ {print $1; bad=1} END {exit !bad}' /etc/shadow; then
  echo "setup.sh: the accounts above have a usable password" >&2
  exit 1
fi
apt-get clean
