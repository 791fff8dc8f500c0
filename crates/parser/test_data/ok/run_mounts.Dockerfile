FROM golang:1.22
RUN --mount=type=bind,source=go.mod,target=/src/go.mod \
    --mount=type=bind,from=deps,src=/go,dst=/go,rw \
    --mount=type=cache,target=/root/.cache/go-build,id=gobuild,sharing=locked,mode=0755,uid=1000,gid=1000 \
    --mount=type=cache,target=/go/pkg/mod,sharing=private,ro \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=secret,id=npmrc,target=/root/.npmrc,required=true,mode=0400 \
    --mount=type=secret,id=token,env=TOKEN \
    --mount=type=ssh,id=default,required \
    --mount=target=/plain \
    --mount=type=cache,target=$HOME/.cache,uid=$UID \
    go build ./...
RUN --network=host --security=insecure --device=vendor.com/gpu=all,required true
