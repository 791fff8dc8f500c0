FROM busybox
USER app:app
WORKDIR /home/app
WORKDIR ../shared/./data
RUN pwd
USER root
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
RUN id
EXPOSE 8080 53/udp
VOLUME /data
LABEL org.example.name="demo" version=1
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s CMD wget -q localhost:8080
