FROM alpine
COPY --from src /dst
