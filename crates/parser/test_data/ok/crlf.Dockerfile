FROM alpine:3.20
ARG VERSION=1.0
RUN echo one \
    two
ENV A=1 B="x y"
CMD ["sh", "-c", "echo $A"]
