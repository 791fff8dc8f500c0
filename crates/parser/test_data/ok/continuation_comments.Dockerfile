FROM debian:bookworm
RUN apt-get update \
# a comment inside the continuation
    && apt-get install -y \
        curl \
    # indented comment
        git \

        make
LABEL a=1 \
      b="two words"
