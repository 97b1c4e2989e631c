# Multi-stage build of the ncr server. Build: docker build -t ncr .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ncr

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/ncr --create-home ncr
COPY --from=build /src/target/release/ncr /usr/local/bin/ncr
USER ncr
WORKDIR /var/lib/ncr
# glibc gives every thread that allocates its own arena (up to 8 per core); with the
# blocking pool's threads that alone doubled the peak RSS under load (scripts/bench).
ENV NCR_BIND=0.0.0.0:8080 NCR_LOG_FORMAT=json MALLOC_ARENA_MAX=2
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["ncr"]
CMD ["serve"]
