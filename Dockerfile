# weir's container image: the `weir` binary (release build, the default operator embedded),
# run as an unprivileged user. Operators deployed with `weir deploy` are fetched from S3 at
# run time (WEIR_OPERATOR=s3://BUCKET/PREFIX).
#
#   docker build -t weir .                          # or: buildah build -t weir .
#   docker run --rm weir run --count 20000          # the reference job on generated trades
#
# The compiled-operator cache is /cache (WEIR_CACHE_DIR): mount a volume there when the root
# file system is read-only, as the ECS task definition in deploy/ does.

# The stage the binary comes from: `build` below, or (BINARY=IMAGE) an image holding a binary
# built by scripts/build-release already, at the same path: scripts/check-image does that
# where the test command has built it.
ARG BINARY=build

FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# rust-toolchain.toml pins the toolchain; the operators are built for wasm32-wasip2 by
# runtime/build.rs and embedded in the binary. The test command runs the same script outside
# a container.
COPY . .
RUN scripts/build-release

# hadolint ignore=DL3006
FROM ${BINARY} AS binary

FROM debian:bookworm-slim
# ca-certificates: TLS to the AWS endpoints. Its version follows the base image's security
# updates, which is what a CA bundle should do.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin weir \
    && mkdir /cache \
    && chown weir /cache
COPY --from=binary /src/target/release/weir /usr/local/bin/weir
USER 10001
ENV WEIR_CACHE_DIR=/cache
ENTRYPOINT ["/usr/local/bin/weir"]
CMD ["run"]
