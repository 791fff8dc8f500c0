FROM example.com/onbuild:1 AS app
RUN echo after the triggers

FROM busybox AS parent
ONBUILD RUN echo parent trigger
ONBUILD ENV TRIGGERED=yes

FROM parent
COPY --from=app /app/src /src
RUN echo $TRIGGERED
