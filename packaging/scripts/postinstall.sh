#!/bin/sh
# ztna-router postinst: the dedicated system user, then the units the way dh_installsystemd
# does it: enabled on the first installation only (an admin's disable survives upgrades), and on
# an upgrade the router is restarted so the new binary runs (deb-systemd-invoke leaves a
# disabled or stopped unit alone). The router only starts once first-boot enrolment has written
# its state, so installing into an image starts nothing.
set -e

if [ "$1" = configure ] && ! getent passwd ztna-router >/dev/null; then
	useradd --system --user-group --no-create-home \
		--home-dir /var/lib/ztna-router --shell /usr/sbin/nologin \
		--comment "ztna edge router" ztna-router
fi

case "$1" in
configure | abort-upgrade | abort-deconfigure | abort-remove)
	for unit in ztna-router-bootstrap.service ztna-router.service; do
		deb-systemd-helper unmask "$unit" >/dev/null || true
		if deb-systemd-helper --quiet was-enabled "$unit"; then
			deb-systemd-helper enable "$unit" >/dev/null || true
		else
			deb-systemd-helper update-state "$unit" >/dev/null || true
		fi
	done
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			deb-systemd-invoke try-restart ztna-router.service >/dev/null || true
		fi
	fi
	;;
esac
