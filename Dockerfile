# Terrace server image.
#
#   docker build -t terrace .                 # the release build, in rust:1-bookworm
#   docker run --rm -p 127.0.0.1:6379:6379 terrace
#
# Stages, in this order on purpose:
#   runtime-base   the runtime image's content, written once: user, directories, default
#                  config, volumes, ports, healthcheck, entrypoint. Its base is the
#                  RUNTIME_BASE argument (debian:bookworm-slim).
#   runtime-local  runtime-base + a prebuilt /usr/local/bin/terrace taken from the image
#                  PREBUILT. tools/docker-image builds it on machines without a registry:
#                    --target runtime-local --build-arg RUNTIME_BASE=terrace-base:bookworm
#                    --build-arg PREBUILT=<an image holding only the host's binary>
#   builder        cargo build --release --locked in rust:1-bookworm.
#   runtime        runtime-base + the builder's binary: the default (last) stage.
# The classic builder (DOCKER_BUILDKIT=0, the default of Docker < 23) builds every stage
# up to the target, used or not (BuildKit skips unused ones). Hence runtime-local comes
# before the builder (it must not need rust:1-bookworm), and it takes its binary from an
# image, not from the build context: with PREBUILT's default (runtime-base, which has no
# binary) it builds, as an empty copy, from the repository's context too.
#
# Configuration at run time: TERRACE_CONFIG (the cluster config file, default
# /etc/terrace/terrace.yaml) and TERRACE_NAME (this server's or voter's name in it) are
# read by `terrace server`, `terrace voter` and `terrace health` (the healthcheck).

ARG RUNTIME_BASE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1-bookworm
ARG PREBUILT=runtime-base

FROM ${RUNTIME_BASE} AS runtime-base
RUN groupadd --system --gid 10001 terrace \
 && useradd --system --uid 10001 --gid terrace --no-create-home \
      --home-dir /var/lib/terrace --shell /usr/sbin/nologin terrace \
 && mkdir -p /etc/terrace /var/lib/terrace \
 && chown terrace:terrace /var/lib/terrace \
 && chmod 750 /var/lib/terrace
COPY conf/docker.yaml /etc/terrace/terrace.yaml
LABEL org.opencontainers.image.title="terrace" \
      org.opencontainers.image.description="Terrace: a Redis-protocol cache cluster server" \
      org.opencontainers.image.licenses="Apache-2.0"
# NO_COLOR: plain log lines for `docker logs` and log collectors.
ENV TERRACE_CONFIG=/etc/terrace/terrace.yaml \
    NO_COLOR=1
WORKDIR /var/lib/terrace
# /etc/terrace: the config (mount a file or directory over it); /var/lib/terrace: the
# servers' `data:` directories (fast-restart log, control-plane state).
VOLUME ["/etc/terrace", "/var/lib/terrace"]
USER terrace:terrace
# 6379: RESP clients; 16379: group port (replication, control plane: keep it private);
# 9121: Prometheus metrics (the default config's metrics_port).
EXPOSE 6379 16379 9121
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["terrace", "health"]
ENTRYPOINT ["terrace"]
CMD ["server"]

FROM ${PREBUILT} AS prebuilt

FROM runtime-base AS runtime-local
COPY --from=prebuilt /usr/local/bin/ /usr/local/bin/

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# The dependencies first, in their own layer: a change under src/ rebuilds only terrace.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src tests/it \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && echo 'fn main() {}' > tests/it/main.rs \
 && cargo build --release --locked \
 && rm -rf src tests target/release/terrace target/release/terrace.d \
      target/release/deps/terrace-* target/release/deps/libterrace-* \
      target/release/.fingerprint/terrace-*
COPY . .
RUN cargo build --release --locked \
 && strip --strip-debug -o /usr/local/bin/terrace target/release/terrace

FROM runtime-base AS runtime
COPY --from=builder /usr/local/bin/terrace /usr/local/bin/terrace
RUN ["terrace", "--version"]
