#!/bin/sh
# ztna-router prerm: stop and disable the units before their files disappear.
set -e
if [ "$1" = remove ]; then
	if [ -d /run/systemd/system ]; then
		systemctl stop ztna-router.service ztna-router-bootstrap.service || true
	fi
	systemctl disable ztna-router.service ztna-router-bootstrap.service || true
fi
