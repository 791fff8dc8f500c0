# syntax=docker/dockerfile:1
FROM busybox
ARG NAME=world
RUN <<EOF
echo hello
echo $NAME
EOF
RUN <<-SCRIPT
	#!/bin/sh
	echo from a script
	SCRIPT
RUN cat <<A <<B > /out
first
A
second
B
COPY <<greeting.txt /etc/
hello ${NAME}
greeting.txt
COPY <<'raw.txt' /etc/raw.txt
not expanded: ${NAME}
raw.txt
