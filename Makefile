# wagate: build, test and benchmark targets. Every target works on a fresh machine with only Go,
# but test's race detector needs cgo and so a C compiler (gcc; RACE= without one);
# redis-server, php-fpm and nginx are used when present (laravel-up installs its own packages).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The revision is linked in too, so -version and wagate_build_info name it even without VCS
# stamping (-buildvcs=false, a source tarball).
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS := -s -w -X wagate/internal/buildinfo.Version=$(VERSION) -X wagate/internal/buildinfo.Revision=$(REVISION)
BINARIES := fakelaravel gateway simulator reports
# Race detector in tests unless RACE= is passed (CI keeps it on).
RACE ?= -race

.PHONY: all build test lint fmt release bench bench-quick bench-scale bench-capacity bench-faults bench-chaos bench-chaos-cluster bench-real-laravel bench-k6 clean

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

# lint: gofmt, go vet, staticcheck (run from the module proxy at a pinned version, no install),
# go.mod/go.sum tidy, and both OpenAPI files through lint-openapi when npx (Node.js) is present.
STATICCHECK_VERSION ?= v0.8.2
REDOCLY_VERSION ?= 2.77.0
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) mod tidy -diff
	@if command -v npx >/dev/null 2>&1; then $(MAKE) --no-print-directory lint-openapi; \
		else echo "lint: npx not found, OpenAPI lint skipped (make lint-openapi needs Node.js: apt-get install npm)"; fi

# The Laravel contract and the gateway's REST API specifications, with a pinned @redocly/cli.
.PHONY: lint-openapi
lint-openapi:
	npx --yes @redocly/cli@$(REDOCLY_VERSION) lint gateway/laravel/openapi.yaml gateway/api/openapi.yaml

fmt:
	gofmt -w $$(git ls-files '*.go')

# One command for a local environment: fakewa, fakelaravel and the gateway on loopback (batch mode,
# embedded Redis, fresh tokens); prints the URLs, the tokens and the two commands that pair a demo
# session; Ctrl-C stops all three (internal/devenv/dev.sh; DEV_* variables move the ports).
.PHONY: dev
dev: build
	@internal/devenv/dev.sh

# The Prometheus alert rules (monitoring/alerts.yml) and their unit tests, with promtool: the one
# on PATH (PROMTOOL=path for another), else the one in Debian's prometheus package, downloaded and
# unpacked under /tmp/wagate-promtool without installing the package (no daemon is set up).
PROMTOOL ?= promtool
.PHONY: test-alerts
test-alerts:
	@set -e; p=$(PROMTOOL); \
	if ! command -v "$$p" >/dev/null 2>&1; then \
		p=/tmp/wagate-promtool/usr/bin/promtool; \
		if [ ! -x "$$p" ]; then \
			echo "test-alerts: no promtool on PATH; unpacking Debian's prometheus package into /tmp/wagate-promtool"; \
			rm -rf /tmp/wagate-promtool && mkdir -p /tmp/wagate-promtool && cd /tmp/wagate-promtool && apt-get download prometheus >/dev/null && dpkg -x prometheus_*.deb . && cd - >/dev/null; \
		fi; \
	fi; \
	"$$p" check rules monitoring/alerts.yml && "$$p" test rules monitoring/alerts_test.yml

# THIRD_PARTY_NOTICES.md from the module graph of the shipped binaries (internal/notices; a test
# fails when it is not current: run this after changing dependencies).
.PHONY: notices
notices:
	$(GO) run ./internal/notices/cmd/notices

# monitoring/grafana-dashboard.json from its generator (monitoring/dashboard, Grafana Foundation
# SDK; a test fails when the committed file differs).
.PHONY: dashboard
dashboard:
	$(GO) run ./monitoring/dashboard/cmd/dashboard

# Release artefacts: static binaries (CGO off, -trimpath, version and revision linked in) for each
# of RELEASE_PLATFORMS, named <binary>-<version>-<os>-<arch>, and SHA256SUMS, in dist/. Tag first
# (git tag -a vX.Y.Z) so that VERSION is the tag; docs/deploy.md#releases.
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
RELEASE_BINARIES ?= gateway fakelaravel simulator reports bench
.PHONY: release
release:
	@rm -rf dist && mkdir -p dist
	@set -e; for p in $(RELEASE_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
		for b in $(RELEASE_BINARIES); do \
			pkg=$$(find . -path "*/cmd/$$b" -type d -not -path "./bin/*" -not -path "./dist/*" | head -1); \
			echo "go build $$pkg -> dist/$$b-$(VERSION)-$$os-$$arch"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o dist/$$b-$(VERSION)-$$os-$$arch $$pkg; \
		done; \
	done
	cd dist && sha256sum * > SHA256SUMS && cat SHA256SUMS

# image: the gateway's container image from the Dockerfile (static binary, distroless, non-root),
# tagged $(IMAGE). Needs a Docker daemon; without one it says so and does nothing.
IMAGE ?= wagate/gateway:$(VERSION)
.PHONY: image
image:
	@if docker info >/dev/null 2>&1; then \
		docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) . && \
		docker run --rm $(IMAGE) -version; \
	else echo "make image: no Docker daemon here (docker info failed); image not built"; fi

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

# 10,000 sessions in one gateway process (benchmarks/scale.yaml: all paired and connected, light
# polling, every session back after a fakewa restart, RSS/goroutines/CPU per session); about 10
# minutes, loads the machine. Report: reports/out/latest-scale/report.md (scale target rows).
bench-scale: build bin/bench
	bin/bench -matrix benchmarks/scale.yaml -link latest-scale -command "make bench-scale" $(BENCH_FLAGS)

# For legacy and batch: the largest user count for which every threshold holds (step up, then
# bisect); later `make bench` reports pick it up for the "users supported" row.
bench-capacity: build bin/bench
	bin/bench -matrix benchmarks/capacity.yaml -capacity -command "make bench-capacity" $(BENCH_FLAGS)

# What k6 scripts cost (benchmarks/k6.yaml): lifecycle-1000 as native Go users and as a k6 script on
# one world (simulator k6-cost: CPU per gateway API request within 1.5x, <= 200 KiB per VU), and
# seed-batch-100 as YAML and as JS side by side (Laravel requests/min). ~12 minutes.
bench-k6: build bin/bench
	bin/bench -matrix benchmarks/k6.yaml -link latest-k6 -command "make bench-k6" $(BENCH_FLAGS)

# Cluster mode through the simulator (benchmarks/cluster.yaml): cluster-failover.yaml's workload at
# 300 users with one gateway, with three replicas, and with three and a replica SIGKILLed; the
# report's entries table sets Laravel requests/min per replica count side by side, the kill
# entry's thresholds hold the takeover time (replica_takeover_time) against issue 16's bound
# (15 s + 2 s per 1000 sessions). About 14 minutes on 2 cores.
.PHONY: bench-cluster bench-cluster-process
bench-cluster: build bin/bench
	bin/bench -matrix benchmarks/cluster.yaml -link latest-cluster -command "make bench-cluster" $(BENCH_FLAGS)

# The same figures with real processes and no simulator (gateway/cluster/processtest's Go
# benchmarks): Laravel requests per minute and items per request with 1 vs 3 replicas on the same
# workload (devices dropped every 100 ms for 30 s), and the takeover time after a replica's SIGKILL
# against issue 16's bound; CLUSTER_SESSIONS sessions (<= 300). About 4 minutes.
CLUSTER_SESSIONS ?= 300
bench-cluster-process: build
	WAGATE_CLUSTER_TEST_SESSIONS=$(CLUSTER_SESSIONS) $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 20m ./gateway/cluster/processtest

# Every fault scenario (benchmarks/faults.yaml: Laravel down/errors/slow/lost responses, Redis
# restarted and lost, gateway SIGKILL and SIGTERM during a flush, reconnect storm, logouts,
# replaced streams), then faults.md in the bench folder: one row per fault (delays, recovery,
# Laravel requests before/during/after, memory and outbox peaks, ground truth). ~15 minutes.
bench-faults: build bin/bench
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/faults-report ./benchmarks/cmd/faults-report
	@bin/bench -matrix benchmarks/faults.yaml -link latest-faults -command "make bench-faults" $(BENCH_FLAGS); status=$$?; \
		bin/faults-report -command "make bench-faults" reports/out/latest-faults || status=1; exit $$status

# The generative fault campaign (scenarios/chaos.yaml): SCHEDULES random fault schedules drawn from
# SEED, each on a fresh world, judged by the delivery invariants; report.md/html/json and the failing
# schedules (replayable scenario files) under reports/out/chaos-seed-SEED. Measured on 2 busy cores
# (load 9-14), each world draining until settled: ~0.4 s starting, 16 s of users, ~1 s of drain (6 s
# and more after a slow recovery), 0 or 5.3 s of gateway shutdown (some sessions' disconnects take
# 5 s, not yet explained); 12.5-14 s per schedule with PARALLEL=2 (200 in ~45 min), 8.4 s
# with PARALLEL=3 (200 in ~28 min). Replay schedule N of a seed, judged the same way:
# bin/simulator chaos scenarios/chaos.yaml -seed SEED -only N -out DIR
SCHEDULES ?= 200
SEED ?= 1
PARALLEL ?= 2
bench-chaos: build
	bin/simulator chaos scenarios/chaos.yaml -seed $(SEED) -schedules $(SCHEDULES) -parallel $(PARALLEL) -out reports/out/chaos-seed-$(SEED)

# The campaign in cluster mode (scenarios/chaos-cluster.yaml: 3 replicas on redis-server and
# PostgreSQL behind the simulator's front, 40 s of users): the whole vocabulary plus a replica's
# SIGKILL, a replica SIGSTOPped past its lease and a rolling restart. Its own target because a
# cluster world costs ~45 s per schedule on 2 busy cores (PostgreSQL, three gateways, a lease's wait
# per takeover), so make bench-chaos keeps its runtime. CLUSTER_SCHEDULES (20) take ~15 min.
CLUSTER_SCHEDULES ?= 20
bench-chaos-cluster: build
	bin/simulator chaos scenarios/chaos-cluster.yaml -seed $(SEED) -schedules $(CLUSTER_SCHEDULES) -parallel 1 -out reports/out/chaos-cluster-seed-$(SEED)

# The gateway against the real Laravel app and against fakelaravel's calibrated model on the same
# workload (benchmarks/real-laravel.yaml: scenarios/real-laravel.yaml at 20 users, legacy and batch);
# report.md sets them side by side. Each real entry starts laravel/ itself. ~7 minutes.
bench-real-laravel: build bin/bench
	bin/bench -matrix benchmarks/real-laravel.yaml -link latest-real-laravel -command "make bench-real-laravel" $(BENCH_FLAGS)

# Each fuzz target for FUZZTIME (10 s) on its own: the gateway's REST API bodies and paths, the
# Laravel client's response parsing, scenario files, fakewa's frames and handshake, fakelaravel's
# batch endpoint. New failing inputs land in the package's testdata/fuzz and become regression
# tests of `go test`. Go 1.26's coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is mid-input (go.dev/issue/75804, fixed in 1.27):
# such a run wrote no failing input and is reported, not failed.
FUZZTIME ?= 10s
fuzz:
	@set -e; for line in $$($(GO) list -f '{{.ImportPath}}={{.Dir}}' ./...); do \
		pkg=$${line%%=*}; dir=$${line#*=}; \
		for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
			before=$$(ls $$dir/testdata/fuzz/$$t 2>/dev/null | wc -l); \
			if ! $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/wagate-fuzz.log 2>&1; then \
				cat /tmp/wagate-fuzz.log; \
				after=$$(ls $$dir/testdata/fuzz/$$t 2>/dev/null | wc -l); \
				if [ "$$after" -gt "$$before" ] || ! grep -q 'context deadline exceeded' /tmp/wagate-fuzz.log; then exit 1; fi; \
				echo "fuzz: $$t stopped on Go's fuzztime deadline race (go.dev/issue/75804), no failing input: not a finding"; \
			else tail -n 2 /tmp/wagate-fuzz.log; fi; \
		done; \
	done

.PHONY: FORCE fuzz
FORCE:

# The reference Laravel app (laravel/): private php-fpm and nginx masters on loopback, runtime files
# under LARAVEL_DIR; installs Debian's packages when missing. Settings: LARAVEL_PORT (8089),
# LARAVEL_WORKERS (8), LARAVEL_BACKLOG (511), LARAVEL_PROXY_TIMEOUT (60 s), LARAVEL_TOKEN,
# LARAVEL_SECRET (or the WAGATE_LARAVEL_* environment variables). laravel-up writes
# $(LARAVEL_DIR)/env with the URL, token and secret for other tools.
LARAVEL_DIR ?= /tmp/wagate-laravel
LARAVEL_ENV = WAGATE_LARAVEL_DIR=$(LARAVEL_DIR) \
	$(if $(LARAVEL_PORT),WAGATE_LARAVEL_PORT=$(LARAVEL_PORT)) \
	$(if $(LARAVEL_WORKERS),WAGATE_LARAVEL_WORKERS=$(LARAVEL_WORKERS)) \
	$(if $(LARAVEL_BACKLOG),WAGATE_LARAVEL_BACKLOG=$(LARAVEL_BACKLOG)) \
	$(if $(LARAVEL_PROXY_TIMEOUT),WAGATE_LARAVEL_PROXY_TIMEOUT=$(LARAVEL_PROXY_TIMEOUT)) \
	$(if $(LARAVEL_TOKEN),WAGATE_LARAVEL_TOKEN=$(LARAVEL_TOKEN)) \
	$(if $(LARAVEL_SECRET),WAGATE_LARAVEL_SECRET=$(LARAVEL_SECRET))
.PHONY: laravel-up laravel-down calibrate-laravel
laravel-up:
	@$(LARAVEL_ENV) laravel/scripts/up.sh

laravel-down:
	@WAGATE_LARAVEL_DIR=$(LARAVEL_DIR) laravel/scripts/down.sh

# Measures the real Laravel app (fresh laravel-up with the default workers/backlog), fits
# fakelaravel's capacity model, writes fakelaravel/calibration.json and fakelaravel/calibration.md,
# and prints real vs fake side by side (about 4-5 minutes; CALIBRATE_FLAGS=-quick for ~2).
CALIBRATE_FLAGS ?=
calibrate-laravel:
	@$(LARAVEL_ENV) laravel/scripts/up.sh
	@CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/calibrate-laravel ./fakelaravel/calibrate/cmd/calibrate-laravel
	@bin/calibrate-laravel -env $(LARAVEL_DIR)/env $(CALIBRATE_FLAGS); status=$$?; \
		WAGATE_LARAVEL_DIR=$(LARAVEL_DIR) laravel/scripts/down.sh; exit $$status
