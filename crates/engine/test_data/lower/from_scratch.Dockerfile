FROM scratch
COPY README.md /
ENV GREETING=hello
CMD ["/app"]
