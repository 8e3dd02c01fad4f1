# syntax=docker/dockerfile:1
# wolley-push in a small image: the binary on distroless (glibc, CA certificates, no shell),
# running as a non-root user. The entrypoint is the binary: pass the job as the command.
#
#   docker build -t wolley-push .
#   docker run --rm -e WOLLEY_DATABASE_URL=... -e GOOGLE_APPLICATION_CREDENTIALS=/key.json \
#     -v "$PWD/service-account.json:/key.json:ro" wolley-push doctor

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build between builds; the binary is copied out of
# the cached target directory so the next stage can find it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin wolley-push \
    && install -D -m 0755 target/release/wolley-push /out/wolley-push

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/wolley-push /usr/local/bin/wolley-push
# Numeric, so Kubernetes' runAsNonRoot can verify it (distroless' "nonroot" user).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wolley-push"]
CMD ["--help"]
