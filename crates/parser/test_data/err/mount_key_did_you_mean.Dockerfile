FROM alpine
RUN --mount=type=cache,tagret=/c make
