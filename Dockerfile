# climate-jobs: every job binary in one small image.
#
# Build:  docker build -t climate-jobs .
# Run:    docker run --rm -e DATABASE_URL=postgres://… climate-jobs jobctl canary
#
# Multi-stage: dependencies are compiled in a layer of their own (cached
# until Cargo.toml/Cargo.lock change), then the project; the runtime stage
# has only the shared libraries the binaries link (libnetcdf and its
# dependencies), runs as a non-root user and needs no shell.

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnetcdf-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependency layer: build against empty sources so it is reused when only
# our code changes.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin \
 && echo '' > src/lib.rs \
 && echo 'fn main() {}' > src/bin/jobctl.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY migrations migrations
COPY src src
RUN touch src/lib.rs && cargo build --release --locked --bins

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnetcdf19 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home climate
COPY --from=build /src/target/release/jobctl /src/target/release/hazard-timeseries-batch \
     /src/target/release/cache-refresh /src/target/release/dlq-reprocess /usr/local/bin/
COPY jobs.yaml /etc/climate-jobs/jobs.yaml
USER 10001
ENTRYPOINT []
CMD ["jobctl", "--help"]
