# syntax=docker/dockerfile:1
# One image for every component; the command picks which runs:
#   node dist/services/serving/main.js    (default)
#   node dist/services/ingest/main.js
#   node dist/services/consumer/main.js   (started by the operator, one Deployment per FeatureGroup)
#   node dist/operator/main.js
ARG NODE_IMAGE=node:20-bookworm-slim

# Compile TypeScript with the dev dependencies; nothing of this stage ships.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY core core
COPY services services
COPY operator operator
COPY crds crds
COPY examples examples
RUN npm run build

# Runtime dependencies only.
FROM ${NODE_IMAGE} AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# Final: node, the compiled code of the four processes, production node_modules and the SQL
# migrations. No compiler, no npm, no sources, no benchmarks, CRD generator, examples or local
# runner; runs as a numeric non-root user so runAsNonRoot can verify it.
FROM ${NODE_IMAGE}
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn* /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production
WORKDIR /app
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY --from=build /src/dist/core ./dist/core
COPY --from=build /src/dist/operator ./dist/operator
COPY --from=build /src/dist/services/ingest ./dist/services/ingest
COPY --from=build /src/dist/services/serving ./dist/services/serving
COPY --from=build /src/dist/services/consumer ./dist/services/consumer
COPY package.json ./package.json
COPY sql ./sql
USER 10001:10001
EXPOSE 8080 8081 8082 8083
CMD ["node", "dist/services/serving/main.js"]
