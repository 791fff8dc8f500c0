# check=error=true
FROM alpine AS Build
MAINTAINER me
