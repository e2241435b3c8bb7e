# climate-jobs: every job binary in one small image.
#
# Build:  docker build -t climate-jobs .
# Run:    docker run --rm -e DATABASE_URL=postgres://… climate-jobs jobctl canary
# Deploy: jobctl render k8s|aca --image climate-jobs:TAG (README: Deploying)
#
# Multi-stage: dependencies are compiled in a layer of their own (cached
# until Cargo.toml/Cargo.lock change), then the project. The runtime stage
# has only the shared libraries the binaries link (libnetcdf19 and what it
# depends on; tests/dockerfile.rs checks that against `ldd`), runs as a
# non-root user, puts every binary on PATH and needs no shell: ENTRYPOINT and
# CMD are exec form, the schedulers run `<binary> <args>` directly.
#
# Why debian:bookworm-slim and not distroless/cc: the NetCDF reader links
# libnetcdf, which brings HDF5, curl, GnuTLS, Kerberos, LDAP, libxml2 … —
# about 40 shared libraries. From Debian packages they come complete,
# matching the build stage's libnetcdf-dev and patched by a rebuild;
# hand-copying them into a distroless image would be a list to keep in
# sync by hand. Nothing here runs a shell.
#
# Package versions are not pinned (hadolint DL3008): Debian's archive keeps
# only the current version of a package in a release, so a pin breaks the
# build at the next security update; the base image tags fix the release
# (bookworm), and the build stage and runtime stage must use the same one.

FROM rust:1.95-slim-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnetcdf-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependency layer: build every binary against empty sources, so this layer
# is reused when only our code changes.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin \
 && echo '' > src/lib.rs \
 && for bin in jobctl hazard-timeseries-batch probability-batch site-risk-batch cache-refresh dlq-reprocess; do \
      echo 'fn main() {}' > "src/bin/$bin.rs"; \
    done \
 && cargo build --release --locked --bins \
 && rm -rf src
COPY migrations migrations
# The vulnerability curves are built into the binaries (include_str!).
COPY data data
COPY src src
# touch: the sources must look newer than the empty stand-ins built above.
RUN touch src/lib.rs src/bin/*.rs \
 && cargo build --release --locked --bins

FROM debian:bookworm-slim AS runtime
# libnetcdf19: the NetCDF C library and, through its dependencies, every
# other shared library the binaries link. ca-certificates: the system
# trust store for a private database CA (--ca-file / PGSSLROOTCERT).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnetcdf19 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 climate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin climate
COPY --from=build \
     /src/target/release/jobctl \
     /src/target/release/hazard-timeseries-batch \
     /src/target/release/probability-batch \
     /src/target/release/site-risk-batch \
     /src/target/release/cache-refresh \
     /src/target/release/dlq-reprocess \
     /usr/local/bin/
COPY jobs.yaml /etc/climate-jobs/jobs.yaml
# Numeric, so Kubernetes' runAsNonRoot can verify it (k8s.rs: runAsUser 10001).
USER 10001:10001
ENTRYPOINT []
CMD ["jobctl", "--help"]
