FROM alpine
HEALTHCHECK --retries=three CMD true
