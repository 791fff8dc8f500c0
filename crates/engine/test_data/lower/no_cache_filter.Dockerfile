# lower: no-cache-filter deps
FROM busybox AS deps
RUN echo fetch

FROM busybox
COPY --from=deps /etc/hostname /h
RUN echo cached
