FROM alpine
COPY a <<EOF
body
EOF
