# Korrigo — see README.md. Two commands matter: `make run` and `make test`.
SHELL := /bin/bash
export GOFLAGS ?= -mod=readonly
GO ?= go
PKGS := ./...
TEST_FLAGS ?= -race -count=1 -timeout 40m

.PHONY: run build test generate migration check check-generate check-migrations fmt vet tidy bench bench-all load clean

## run: start the server on the embedded default (SQLite in ./data, in-memory broker)
run:
	$(GO) run ./cmd/korrigo serve

## build: the korrigo binary in ./bin
build:
	$(GO) build -o bin/korrigo ./cmd/korrigo

## test: every test; PostgreSQL/Redis suites too when KORRIGO_TEST_POSTGRES_URL/KORRIGO_TEST_REDIS_URL are set
test:
	$(GO) test $(TEST_FLAGS) $(PKGS)

## generate: ent (+ entgql SDL) then gqlgen, from the module root
generate:
	$(GO) run ./tools/entc
	$(GO) tool gqlgen generate

## migration name=<change>: plan a new migration for SQLite and PostgreSQL from the ent schema
migration:
	@test -n "$(name)" || (echo "usage: make migration name=<change>" && exit 2)
	$(GO) run ./tools/migrate -name $(name)

## check: formatting, vet, generated code and migrations up to date
check: fmt vet tidy check-generate check-migrations

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v -E '^(ent/|graph/generated/)')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# tidy: go.mod and go.sum say exactly what the code and the generators need (builds run -mod=readonly)
tidy:
	$(GO) mod tidy -diff

check-generate: generate
	@if [ -n "$$(git status --porcelain -- ent graph gqlgen.yml)" ]; then \
		echo "make generate changed files: commit the generated code"; git status --porcelain -- ent graph; exit 1; fi

check-migrations:
	$(GO) run ./tools/migrate -check

## bench: grading-desk benchmarks through the HTTP handler vs pgbench on the same SQL (needs PostgreSQL)
bench:
	bash tools/bench/run.sh

## load: every load scenario against a server on a fresh PostgreSQL database + Redis, then on SQLite
## (tools/loadtest; < 10 min; reports in loadtest-out/, see docs/PERFORMANCE.md). Not part of `make test`.
load:
	bash tools/loadtest/run.sh

## bench-all: every Go benchmark of the module
bench-all:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

clean:
	rm -rf bin data
