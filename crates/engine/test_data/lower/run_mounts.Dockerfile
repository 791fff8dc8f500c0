FROM busybox AS deps
RUN mkdir -p /deps && echo dep > /deps/a

FROM busybox
ARG CACHE_ID=gocache
RUN --mount=type=cache,target=/root/.cache,id=${CACHE_ID},sharing=locked \
    --mount=type=bind,source=src,target=/src \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=secret,id=token,env=TOKEN \
    --mount=type=secret,id=npmrc,target=/root/.npmrc,required=true \
    --mount=type=bind,from=deps,source=/deps,target=/deps \
    --mount=type=ssh \
    ls /src /deps
RUN --mount=type=cache,target=cache,from=deps,source=/deps,uid=1000,mode=0700 ls cache
RUN --network=none --mount=type=bind,target=/ctx,rw true
RUN --network=host true
