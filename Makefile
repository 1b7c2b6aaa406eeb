# The one command that runs the tests on a fresh machine: `make test`.
.PHONY: test build bench fuzz

build:
	go build -o bin/ ./cmd/ledgervault ./cmd/ledgervault-dev

test:
	bash scripts/test.sh

# Longer fuzzing of every decoder (FUZZTIME per target, default 30s).
fuzz:
	bash scripts/fuzz.sh

bench:
	go test -run '^$$' -bench . -benchmem ./...
