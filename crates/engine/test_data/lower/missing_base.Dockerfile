FROM busybox
COPY --from=example.com/nowhere:1 /x /x
