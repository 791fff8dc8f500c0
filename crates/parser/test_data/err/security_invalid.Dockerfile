FROM alpine
RUN --security=root make
