FROM alpine
WORKDIR --mode=0755 /app
