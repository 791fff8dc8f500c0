FROM busybox
RUN echo hello > /greeting
WORKDIR app
RUN ls -l
