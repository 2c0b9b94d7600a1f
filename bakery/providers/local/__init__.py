"""Local: QEMU images from bakery's Debian base disks, kept in the local catalog."""
