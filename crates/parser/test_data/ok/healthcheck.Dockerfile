FROM nginx
HEALTHCHECK NONE
HEALTHCHECK CMD curl -f http://localhost/
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \
  CMD /app/check.sh --quiet
HEALTHCHECK --timeout=3s CMD ["foo", "bar"]
HEALTHCHECK --start-period=0s --start-interval=0s --interval=1m30s --timeout=1.5s --retries=0 CMD ["foo"]
HEALTHCHECK --interval=500ms --timeout=1h2m3s4ms CMD true
