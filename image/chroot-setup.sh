#!/bin/bash
# Runs inside the image (chroot, arm64 through qemu on an x86 host), called by build.sh.
# The data partition is mounted at /var/lib/upazila-hub and the boot partition at
# /boot/firmware while this runs; our files are in /tmp/upazila.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
DATA_DIR=/var/lib/upazila-hub
VENV=/opt/upazila-hub/venv

# packages: venv for the appliance; lgpio for gpiozero (LEDs, button) from Raspberry Pi
# OS rather than compiled in the venv; overlayroot for the read-only root; growpart;
# dnsmasq (the hub's LAN resolver, `appliance dns`) and hostapd for hubs provisioned as
# the UHC's access point (docs/lan.md); setcap from libcap2-bin
apt-get update
apt-get install -y --no-install-recommends \
  python3-venv python3-lgpio overlayroot cloud-guest-utils initramfs-tools \
  dnsmasq-base hostapd libcap2-bin
# a swap file and a syslog daemon would write to the SD card all day; journald keeps
# the logs in RAM (systemd/journald.conf.d/upazila-hub.conf)
apt-get purge -y dphys-swapfile rsyslog || true

# the service user: no login, no home of its own beyond the data directory
if ! id hub >/dev/null 2>&1; then
  useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
          --shell /usr/sbin/nologin hub
fi
for g in gpio video i2c; do
  if getent group "$g" >/dev/null; then usermod -aG "$g" hub; fi
done

# the appliance: its own venv; --system-site-packages so gpiozero finds python3-lgpio
python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install --no-cache-dir --upgrade pip
"$VENV/bin/pip" install --no-cache-dir /tmp/upazila/*.whl
"$VENV/bin/appliance" --version
"$VENV/bin/supervisord" --version
"$VENV/bin/litestream" version

# the LAN resolver runs as hub under supervisord. Port 53 needs only the unit's ambient
# CAP_NET_BIND_SERVICE; DHCP (access-point hubs) also needs CAP_NET_ADMIN and CAP_NET_RAW.
# Only this copy of dnsmasq holds them, as file capabilities, and only the hub group may
# run it: the Python programs never hold them. hostapd stays off until a hub is set up
# as the access point.
install -d -m 0755 /opt/upazila-hub/bin
install -o root -g hub -m 0750 /usr/sbin/dnsmasq /opt/upazila-hub/bin/dnsmasq
setcap cap_net_bind_service,cap_net_admin,cap_net_raw+ep /opt/upazila-hub/bin/dnsmasq
systemctl disable hostapd.service || true

# the data partition (mounted here now): the database, state, and the configuration.
# /etc is on the read-only root, so /etc/upazila-hub points into the data partition.
install -d -o hub -g hub -m 0750 "$DATA_DIR"
install -d -o root -g hub -m 0750 "$DATA_DIR/etc"
rm -rf /etc/upazila-hub
ln -s "$DATA_DIR/etc" /etc/upazila-hub
# fake-hwclock: the last known time survives reboots on the data partition (no RTC)
if [[ -e /etc/fake-hwclock.data || -x /sbin/fake-hwclock ]]; then
  mv -f /etc/fake-hwclock.data "$DATA_DIR/fake-hwclock.data" 2>/dev/null || true
  ln -sfn "$DATA_DIR/fake-hwclock.data" /etc/fake-hwclock.data
fi

# units
systemctl enable 'var-lib-upazila\x2dhub.mount' upazila-growdata.service \
                 upazila-firstboot.service upazila-hub.service
# python-zeroconf in the hub answers for hub.local itself; avahi would claim the same
# name and one of them would become "hub-2.local"
systemctl mask avahi-daemon.service avahi-daemon.socket
# nobody types a user name at first boot: no wizard
systemctl mask userconfig.service || true
# nothing to update on a read-only root, and no writes to the card for it
systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer || true

# hostname "hub": laptops find the LAN server as http://hub.local
echo hub >/etc/hostname
sed -i 's/^127\.0\.1\.1.*/127.0.1.1\thub/' /etc/hosts
ln -sf /usr/share/zoneinfo/Asia/Dhaka /etc/localtime
echo Asia/Dhaka >/etc/timezone

# remote administration: only with the national team's key, never a password
if [[ -f /tmp/upazila/admin.pub ]]; then
  id hubadmin >/dev/null 2>&1 || useradd --create-home --groups sudo --shell /bin/bash hubadmin
  passwd --lock hubadmin
  install -d -o hubadmin -g hubadmin -m 0700 /home/hubadmin/.ssh
  install -o hubadmin -g hubadmin -m 0600 /tmp/upazila/admin.pub /home/hubadmin/.ssh/authorized_keys
  echo 'hubadmin ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/010-hubadmin
  chmod 0440 /etc/sudoers.d/010-hubadmin
  # per-hub host keys, made on first boot on the data partition (the root is read-only,
  # and keys baked into the image would be the same on 500 hubs)
  cat >/etc/ssh/sshd_config.d/upazila-hub.conf <<EOF
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
HostKey $DATA_DIR/ssh/etc/ssh/ssh_host_ed25519_key
EOF
  install -d /etc/systemd/system/ssh.service.d
  cat >/etc/systemd/system/ssh.service.d/upazila-hub.conf <<EOF
[Unit]
RequiresMountsFor=$DATA_DIR
[Service]
ExecStartPre=/bin/mkdir -p $DATA_DIR/ssh/etc/ssh
ExecStartPre=/usr/bin/ssh-keygen -A -f $DATA_DIR/ssh
EOF
  systemctl mask regenerate_ssh_host_keys.service || true
  systemctl enable ssh.service
else
  systemctl disable ssh.service || true
fi

# the read-only root: overlayroot (initramfs) puts a tmpfs over / at boot, with
# "overlayroot=tmpfs:recurse=0" on the kernel command line (build.sh); recurse=0 leaves
# the boot and data partitions as they are. Raspberry Pi OS loads the initramfs
# (auto_initramfs=1 in config.txt); the raspi-firmware hook copies it to /boot/firmware.
update-initramfs -u -k all

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /root/.cache
