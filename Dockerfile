# syntax=docker/dockerfile:1
# sluice's image: built with dev dependencies, run with production ones only.
#   docker build -t REGISTRY/sluice:TAG . && docker push REGISTRY/sluice:TAG
# Runs as a non-root user and writes nothing outside /tmp, so readOnlyRootFilesystem with
# an emptyDir on /tmp works (as the manifests and the chart set it).
# test/image/image.test.ts performs the same install and build steps on the host.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# npm install, not npm ci: see .ci/run (the lock lacks some optional platform builds).
RUN npm install --no-audit --no-fund --loglevel=error
COPY . .
RUN npm run build && npm pack --pack-destination /out

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out/sluice-*.tgz /tmp/sluice.tgz
COPY package-lock.json /app/package-lock.json
RUN tar -xzf /tmp/sluice.tgz --strip-components=1 -C /app \
 && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && npm cache clean --force \
 && rm /tmp/sluice.tgz \
 && chmod 0755 /app/dist/bin/sluice.js \
 && ln -s /app/dist/bin/sluice.js /usr/local/bin/sluice \
 && ln -s /app/dist/bin/sluice.js /usr/local/bin/kubectl-sluice
# The node image's unprivileged user (uid 1000), which the manifests' runAsUser names.
USER 1000:1000
EXPOSE 9443 8080
ENTRYPOINT ["sluice"]
CMD ["serve"]
