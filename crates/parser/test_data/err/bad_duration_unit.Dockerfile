FROM alpine
HEALTHCHECK --timeout=5sec CMD true
