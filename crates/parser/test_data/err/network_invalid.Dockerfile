FROM alpine
RUN --network=bridge make
