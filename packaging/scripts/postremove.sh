#!/bin/sh
# ztna-router postrm: on remove the units are masked until purge (dh_installsystemd's way, so a
# reinstall keeps the admin's enable state); purge forgets them and removes the enrolled
# identity (private key, certificates) and the user.
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
for unit in ztna-router.service ztna-router-bootstrap.service; do
	case "$1" in
	remove)
		if command -v deb-systemd-helper >/dev/null; then
			deb-systemd-helper mask "$unit" >/dev/null || true
		fi
		;;
	purge)
		if command -v deb-systemd-helper >/dev/null; then
			deb-systemd-helper purge "$unit" >/dev/null || true
			deb-systemd-helper unmask "$unit" >/dev/null || true
		fi
		;;
	esac
done
if [ "$1" = purge ]; then
	rm -rf /var/lib/ztna-router
	if getent passwd ztna-router >/dev/null; then
		userdel ztna-router || true
	fi
fi
