#!/bin/sh
# Put the kernel and initrd the image will boot with at fixed paths, for Packer to download:
# a local image boots by direct kernel boot with exactly what it was built with.
set -eu
kernel=$(ls -1 /boot/vmlinuz-* | sort -V | tail -n 1)
version=${kernel#/boot/vmlinuz-}
install -d -m 0700 /run/bakery-boot
cp "$kernel" /run/bakery-boot/vmlinuz
cp "/boot/initrd.img-$version" /run/bakery-boot/initrd.img
echo "staged kernel $version"
