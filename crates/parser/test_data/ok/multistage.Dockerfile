ARG GO_VERSION=1.22
ARG ALPINE=3.20

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app .

FROM alpine:${ALPINE} AS runtime
COPY --from=build /out/app /usr/local/bin/app
USER 65534
ENTRYPOINT ["app"]

FROM runtime
EXPOSE 8080
