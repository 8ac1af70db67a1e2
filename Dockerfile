# Multi-stage build of the one docket binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/docket ./cmd/docket

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/docket /usr/local/bin/docket
VOLUME /data
ENV DOCKET_DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/docket"]
CMD ["serve"]
