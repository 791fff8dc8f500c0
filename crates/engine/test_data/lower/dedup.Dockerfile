FROM busybox AS a
RUN echo common
RUN echo a

FROM busybox AS b
RUN echo common
RUN echo b

FROM scratch
COPY --from=a /a /a
COPY --from=b /b /b
