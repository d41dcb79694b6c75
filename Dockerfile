# stockroute: a small image holding one static-enough binary.
#
#   docker build -t stockroute:0.1.0 .
#
# Stage 1 builds the `production` profile: release, optimised across crates at link time
# (protobuf is compiled by protox, in Rust: no protoc).
# Stage 2 is distroless: glibc, CA certificates and a non-root user, no shell.
# Needs BuildKit (the cache mounts); there is no `# syntax=` line, so its built-in Dockerfile
# frontend is used and nothing but the two base images is pulled. scripts/image-check builds
# the image and checks that it serves (docs/deployment.md).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_PRODUCTION_DEBUG=0 CARGO_PROFILE_PRODUCTION_STRIP=symbols \
    cargo build --profile production --locked --bin stockroute \
    && install -D -m 0755 target/production/stockroute /out/stockroute

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/stockroute /usr/local/bin/stockroute
# uid/gid 65532 ("nonroot"); the Helm chart runs it with a read-only root file system.
USER 65532:65532
# gRPC (Fulfillment, Catalog, health, reflection) and HTTP (/metrics, /healthz, /readyz).
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/stockroute"]
CMD ["serve"]
