#!/bin/sh
# The last step of every bake. An image must make unique instances and carry no build secret:
# host keys, machine-id, build keys, apt lists, logs and shell history go. Runs as root.
set -eu

# SSH host keys: each instance makes its own at first boot (bakery-ssh-hostkeys.service on
# bakery base disks; cloud-init on cloud images).
rm -f /etc/ssh/ssh_host_*

# machine-id: an empty file makes systemd generate a new one at first boot.
if [ -e /etc/machine-id ]; then : > /etc/machine-id; fi
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then rm -f /var/lib/dbus/machine-id; fi
rm -f /var/lib/systemd/random-seed

# cloud-init state: each instance runs cloud-init afresh (and, on cloud images, makes its host keys).
if command -v cloud-init >/dev/null 2>&1; then cloud-init clean --logs || true; fi

# Package lists and caches: stale the moment the image is saved.
if command -v apt-get >/dev/null 2>&1; then apt-get clean; fi
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# Logs and shell history of the build.
find /var/log -type f -exec truncate -s 0 {} +
rm -rf /var/log/journal/* /root/.bash_history /root/.ansible /home/*/.bash_history /home/*/.ansible
rm -rf /tmp/* /var/tmp/*

# Build access, last: the bake's key (and the cloud builders' temporary key).
rm -f /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys
sync
