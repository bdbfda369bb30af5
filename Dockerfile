# Builds the korrigo binary; see docker-compose.yml for a PostgreSQL + Redis setup.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release reported to Sentry: docker build --build-arg KORRIGO_VERSION=v1.2.3 .
ARG KORRIGO_VERSION=""
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X github.com/korrigo/korrigo/server.Version=${KORRIGO_VERSION}" -o /out/korrigo ./cmd/korrigo

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/korrigo korrigo && mkdir -p /var/lib/korrigo && chown korrigo /var/lib/korrigo
COPY --from=build /out/korrigo /usr/local/bin/korrigo
USER korrigo
ENV KORRIGO_DATA_DIR=/var/lib/korrigo KORRIGO_ADDR=:8080
EXPOSE 8080
ENTRYPOINT ["korrigo"]
CMD ["serve"]
