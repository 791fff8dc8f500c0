FROM alpine as Builder
MAINTAINER Jane Doe <jane@example.com>
CMD echo "shell form"
ENTRYPOINT exec app
FROM Builder AS scratch
SHELL ["/bin/sh", "-c"]
CMD echo "after SHELL: no warning"
from alpine AS last
