# syntax=docker/dockerfile:1
#
# billing-api and billing-migration in one small image.
#
#   docker build -t billing-api .
#   docker run --rm -e BILLING_API_TOKEN=... -e DATABASE_URL=postgres://... \
#              -e REDIS_URL=redis://... -p 8080:8080 billing-api
#   docker run --rm --entrypoint billing-migration -e DATABASE_URL=... billing-api up
#
# The builder and the runtime share the Debian release (trixie), so the
# binaries find the glibc they were linked against. TLS is rustls
# everywhere: no OpenSSL at build or run time.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
# The registry and target directories are BuildKit caches: a rebuild after a
# source change recompiles the workspace crates only.
# Two builds, so that billing-api is linked without the migration CLI
# (sea-orm-cli is the `cli` feature of billing-migration, for its binary only).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p billing-api \
    && cargo build --release --locked -p billing-migration \
    && mkdir -p /out \
    && cp target/release/billing-api target/release/billing-migration /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 billing \
    && useradd --system --uid 10001 --gid billing --home-dir /app --shell /usr/sbin/nologin billing \
    && mkdir -p /app \
    && chown billing:billing /app
COPY --from=builder /out/billing-api /out/billing-migration /usr/local/bin/
WORKDIR /app
USER billing:billing
# In a container the API must listen on all interfaces; billing-api then
# refuses to start without BILLING_API_TOKEN.
ENV BILLING_BIND=0.0.0.0:8080 \
    BILLING_LOG_FORMAT=json
EXPOSE 8080
# SIGTERM (docker stop) lets requests in flight finish within
# BILLING_SHUTDOWN_TIMEOUT (30 s): give `docker stop -t` / the orchestrator's
# grace period a little more than that.
STOPSIGNAL SIGTERM
# Healthy when /health/ready answers 200 (database and Redis usable). The
# image has no curl: the binary asks itself, on loopback, at BILLING_BIND's
# port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/billing-api", "probe"]
ENTRYPOINT ["/usr/local/bin/billing-api"]
