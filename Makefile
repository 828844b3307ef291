# wagate: build, test and benchmark targets. Every target works on a fresh machine with only Go;
# redis-server, php-fpm and nginx are used when present (laravel-up installs its own packages).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X wagate/internal/buildinfo.Version=$(VERSION)
BINARIES := fakelaravel gateway simulator reports
# Race detector in tests unless RACE= is passed (CI keeps it on).
RACE ?= -race

.PHONY: all build test lint fmt bench bench-quick bench-capacity bench-faults clean

all: build

build:
	@mkdir -p bin
	@for b in $(BINARIES); do \
		pkg=$$(find . -path "*/cmd/$$b" -type d -not -path "./bin/*" | head -1); \
		if [ -n "$$pkg" ]; then \
			echo "go build $$pkg -> bin/$$b"; \
			CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/$$b $$pkg || exit 1; \
		fi; \
	done

test: build
	$(GO) test $(RACE) -timeout 30m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# Bench targets (benchmarks/): bin/bench runs a matrix through bin/simulator, one fresh set of
# processes and stores per run, and writes reports/out/<timestamp>/report.{md,html} (link:
# reports/out/latest). Exit code 99 when a threshold failed, 1 when a run failed.
BENCH_FLAGS ?=
bin/bench: FORCE
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/bench ./benchmarks/cmd/bench

bench: build bin/bench
	bin/bench -matrix benchmarks/default.yaml -command "make bench" $(BENCH_FLAGS)

bench-quick: build bin/bench
	bin/bench -matrix benchmarks/quick.yaml -command "make bench-quick" $(BENCH_FLAGS)

# For legacy and batch: the largest user count for which every threshold holds (step up, then
# bisect); later `make bench` reports pick it up for the "users supported" row.
bench-capacity: build bin/bench
	bin/bench -matrix benchmarks/capacity.yaml -capacity -command "make bench-capacity" $(BENCH_FLAGS)

.PHONY: FORCE
FORCE:
