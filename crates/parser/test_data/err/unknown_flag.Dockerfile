FROM alpine
RUN --privileged make
