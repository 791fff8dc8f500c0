FROM alpine
RUN --mount=type=tmpfs,target=/t,size=big make
