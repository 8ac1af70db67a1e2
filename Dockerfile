# Multi-stage build of the one docket binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version the binary reports (docket version, /readyz, /openapi.json);
# `make docker-test` and compose pass the git description.
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/docket ./cmd/docket
# The data directory must belong to the nonroot user (uid 65532) before the
# VOLUME line, so that a new named volume starts out writable by it.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/docket /usr/local/bin/docket
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
ENV DOCKET_DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/docket"]
CMD ["serve"]
