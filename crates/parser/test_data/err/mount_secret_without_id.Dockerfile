FROM alpine
RUN --mount=type=secret make
