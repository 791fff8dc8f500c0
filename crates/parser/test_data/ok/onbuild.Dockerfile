FROM node:20
onbuild copy package.json /app/
ONBUILD RUN --mount=type=cache,target=/root/.npm npm ci
ONBUILD ENV NODE_ENV=production
ONBUILD HEALTHCHECK NONE
ONBUILD RUN <<EOF
echo from a heredoc
EOF
