FROM busybox
RUN echo $(( 1 << 4 )) && cat <<EOT
body
