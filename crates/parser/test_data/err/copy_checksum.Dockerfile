FROM alpine
COPY --checksum=sha256:00 a /b
