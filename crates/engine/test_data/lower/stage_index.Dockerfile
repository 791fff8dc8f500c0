FROM example.com/tools/builder:1.0
RUN make

FROM busybox
COPY --from=0 /go/bin/ /usr/local/bin/
RUN --mount=type=bind,from=0,target=/builder ls /builder
