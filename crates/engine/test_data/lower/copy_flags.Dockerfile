FROM busybox
COPY --chown=1000:1000 --chmod=0644 README.md /docs/
COPY --chmod=u=rwX,go=rX scripts/ /usr/local/bin/
COPY --link --chown=1000 src /src
COPY --link --chmod=755 scripts/build.sh /build.sh
COPY --exclude=*.md --exclude=scripts . /ctx/
COPY --parents src/main.c /p/
ADD app.tar.gz /opt/
ADD --unpack=false app.tar.gz /archives/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/file.txt /file.txt
