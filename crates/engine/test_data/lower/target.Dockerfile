# lower: target test
FROM busybox AS base
RUN echo base

FROM base AS test
RUN echo test

FROM base AS release
RUN echo release
