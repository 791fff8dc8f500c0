FROM alpine
RUN --mount=type=bind,target=/t,mode=0700 make
