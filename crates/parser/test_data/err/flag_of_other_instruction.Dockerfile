FROM alpine
ADD --from=build /out /app
