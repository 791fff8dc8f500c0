FROM alpine
RUN --mount=type=cache,target=/c,sharing=lokced make
