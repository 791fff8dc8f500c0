FROM alpine
COPY --link=yes src /dst
