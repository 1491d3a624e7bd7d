#!/bin/sh
# ztna-router postrm: purge removes the enrolled identity (private key, certificates) and the user.
set -e
if [ "$1" = purge ]; then
	rm -rf /var/lib/ztna-router
	if getent passwd ztna-router >/dev/null; then
		userdel ztna-router || true
	fi
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
