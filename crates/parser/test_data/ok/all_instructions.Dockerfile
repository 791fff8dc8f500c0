# syntax=docker/dockerfile:1
# check=skip=JSONArgsRecommended
ARG BASE=alpine:3.20
ARG TAG HOST=example.com
FROM --platform=$BUILDPLATFORM ${BASE} AS build
RUN --network=none --security=sandbox --mount=type=cache,target=/root/.cache echo build
RUN ["echo", "exec", "form"]
COPY --from=build --chown=1000:1000 --chmod=0755 --link --parents --exclude=*.md --exclude=tmp/ src/ /app/
COPY --link=false -- a b /dst/
ADD --chown=app --chmod=u+rwx --link --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir=true --unpack=false --exclude=.git https://example.com/a.tar.gz /opt/
ADD git@github.com:moby/buildkit.git#v0.15.0 /src
CMD echo shell form
LABEL org.opencontainers.image.title="demo app" version=1.0 "quoted key"=v
MAINTAINER someone <someone@example.com>
EXPOSE 8080/tcp 53/udp 443
ENV A=1 B="two words" C=${A:-x}
ENV LEGACY value with spaces
ENTRYPOINT ["/bin/app"]
VOLUME ["/data", "/logs"]
VOLUME /cache /tmp/x
USER app:app
WORKDIR /app
ARG LATE=yes
ONBUILD RUN echo triggered
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=1m --start-interval=5s --retries=3 CMD curl -f http://localhost/ || exit 1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
FROM scratch
COPY --from=build /app /
