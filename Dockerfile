# syntax=docker/dockerfile:1
# Build: docker build -t dingdesk --build-arg VERSION=$(git describe --always) .
# Run:   docker run -p 8080:8080 -v dingdesk-data:/app/data \
#          -v $PWD/dingdesk.yaml:/etc/dingdesk/dingdesk.yaml:ro \
#          -e DINGDESK_DINGTALK_CLIENT_SECRET=... dingdesk
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same build as .ci/run: static (pure-Go SQLite, no cgo), trimmed.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/dingdesk ./cmd/dingdesk \
 && mkdir -p /out/data /out/etc/kb \
 && cp examples/dingdesk.yaml /out/etc/dingdesk.yaml \
 && cp examples/kb/* /out/etc/kb/

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/dingdesk /usr/local/bin/dingdesk
# Defaults so the image starts on its own; mount your config over it.
COPY --from=build /out/etc /etc/dingdesk
COPY --from=build --chown=65532:65532 /out/data /app/data
USER 65532:65532
# A relative storage.dsn is relative to the config file (/etc/dingdesk, read
# only); the database belongs on the volume.
ENV DINGDESK_STORAGE_DSN=/app/data/dingdesk.db
VOLUME ["/app/data"]
EXPOSE 8080
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/dingdesk"]
CMD ["serve", "-c", "/etc/dingdesk/dingdesk.yaml"]
