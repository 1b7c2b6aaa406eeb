# The one command that runs the tests on a fresh machine: `make test`.
.PHONY: test build bench fuzz

# The version, commit and build date stamped into the binaries (internal/buildinfo);
# override with `make build VERSION=v1.2.3`.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BUILDINFO := github.com/ledgervault/ledgervault/internal/buildinfo
LDFLAGS := -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT) -X $(BUILDINFO).Date=$(DATE)

build:
	go build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/ledgervault ./cmd/ledgervault-dev

test:
	bash scripts/test.sh

# Longer fuzzing of every decoder (FUZZTIME per target, default 30s).
fuzz:
	bash scripts/fuzz.sh

bench:
	go test -run '^$$' -bench . -benchmem ./...
