FROM --platform=linux/amd64 --platform=linux/arm64 alpine
