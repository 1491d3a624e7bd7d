#!/bin/sh
# ztna-router postinst: the dedicated system user, then the units. The router only starts once
# first-boot enrolment has written its state, so installing into an image starts nothing.
set -e

if ! getent passwd ztna-router >/dev/null; then
	useradd --system --user-group --no-create-home \
		--home-dir /var/lib/ztna-router --shell /usr/sbin/nologin \
		--comment "ztna edge router" ztna-router
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
systemctl enable ztna-router-bootstrap.service ztna-router.service
