FROM busybox
FNTRYPOINT ["cmd"]
entrypoin ["cmd"]
Entrypoin ["cmd"]
RUN --mont=type=cache,target=/c true
RUN --mount=typ=cache,target=/c true
RUN --mount=type=tmp,target=/c true
