# syntax=docker/dockerfile:1
# One image, both binaries: sluice-operator and sluice-dataplane.
# The build step is `make release`, the same command a developer runs.

FROM docker.io/library/rust:1.95-bookworm AS build
# aws-lc-sys builds its C sources with cmake.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake=3.25.* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make release \
 && mkdir -p /out \
 && cp target/release/sluice-operator target/release/sluice-dataplane /out/

# Distroless: no shell, no package manager; runs as UID 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sluice-operator /out/sluice-dataplane /usr/local/bin/
USER 65532:65532
EXPOSE 8080 8443 10254
ENTRYPOINT ["/usr/local/bin/sluice-dataplane"]
