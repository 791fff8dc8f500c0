FROM example.com/tools/builder:1.0 AS build
COPY src/ ./src/
RUN cc -o /out/app src/main.c

FROM busybox AS unused
RUN echo never lowered

FROM scratch
COPY --from=build /out/app /usr/local/bin/app
COPY --from=busybox /bin/busybox /bin/sh
ENTRYPOINT ["/usr/local/bin/app"]
