FROM alpine
COPY --chwon=app:app src /dst
