#!/bin/sh
# ztna-router prerm: stop the router before its files disappear (not on upgrade: postinst
# restarts it on the new binary).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop ztna-router.service ztna-router-bootstrap.service >/dev/null || true
fi
