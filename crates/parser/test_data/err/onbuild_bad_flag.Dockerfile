FROM alpine
ONBUILD COPY --chwon=1 a b
