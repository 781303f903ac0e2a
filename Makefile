# spotbench: fake-ec2, the autoscaler and the e2e harness.
# Build output lives outside the clone so fresh clones (CI) reuse earlier builds.
SHELL := /bin/bash
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/spotbench
export CARGO_TARGET_DIR ?= $(CACHE_DIR)/target
FAKE_EC2 := $(CARGO_TARGET_DIR)/debug/fake-ec2
PORT ?= 4566
SEED ?= 1
WORLD ?= fixtures/worlds/default.yaml
PYTHON ?= python3
# The autoscaler under test for `make up`, `make e2e`: spotbench (the project's) or karpenter (upstream, unmodified).
AUTOSCALER ?= spotbench
# `make perf` measures each row again with this autoscaler, right after, for the ratios; PEER= skips it.
PEER ?= karpenter


.PHONY: e2e e2e-list compare
.PHONY: help setup build crds demo up serve test test-rust test-python lint fuzz bench perf clean-cache k8s-bins karpenter-bin cluster-up cluster-down cluster-smoke

help:
	@echo "make demo   - spot scale-up end to end: local cluster, fake-ec2, autoscaler, 10 pods (KEEP=1 leaves it up)"
	@echo "make e2e    - every scenario in fixtures/scenarios on the local backend, a summary, HTML reports (SCENARIOS=\"a b\" for some, JOBS=2 for two at once)"
	@echo "              (AUTOSCALER=karpenter runs them with upstream Karpenter; the results go to bench/matrix-*.json, bench/matrix.md, README)"
	@echo "make compare - each scenario with both autoscalers on one seed: a page per scenario, bench/compare.md (SCENARIOS=\"a b\")"
	@echo "make serve  - build and serve fake-ec2 with the default world on 127.0.0.1:$(PORT)"
	@echo "make fuzz   - property tests of every parser fake-ec2 takes outside input with (FUZZ_SECONDS=60)"
	@echo "make test   - every test: Rust unit + integration (aws-sdk-ec2/sqs/pricing), local-cluster e2e, boto3 and AWS CLI suites"
	@echo "make crds   - regenerate autoscaler/crds/*.yaml from the Rust types"
	@echo "make userdata-golden - rewrite userdata/tests/golden/*.txt with upstream Karpenter's bootstrap package (needs Go, module proxy)"
	@echo "make up     - cluster + fake-ec2 + autoscaler left running for manual play; prints KUBECONFIG, endpoints, commands"
	@echo "              (AUTOSCALER=karpenter runs upstream Karpenter instead, and prints how to run it by hand)"
	@echo "make bench  - fake-ec2 vs moto_server -> bench/results.md; scheduling, consolidation, interruption, SQS; then make perf"
	@echo "make perf   - end-to-end times (pending -> Running for 10 to 10,000 pods, interruptions, suite), each row also with"
	@echo "              PEER=karpenter (the default; PEER= skips it) for the ratios -> bench/results.md"
	@echo "make setup  - install what a fresh machine lacks (Python clients, moto)"
	@echo "make k8s-bins      - build etcd, kube-apiserver/-controller-manager/-scheduler, kubectl, kwok, kwokctl from Go modules (cached)"
	@echo "make karpenter-bin - build upstream Karpenter (e2e/k8s/karpenter.env) from Go modules, with its CRDs (cached)"
	@echo "make cluster-up    - start a kwok cluster (binary runtime, 127.0.0.1); prints export KUBECONFIG=..."
	@echo "make cluster-down NAME=... - delete that cluster"
	@echo "make cluster-smoke - up, fake Node, Deployment, CRD, down"

setup:
	@bash .ci/setup

build:
	cargo build -p fake-ec2 --bins

# The CRDs are generated from autoscaler/src/apis; a unit test fails when the committed ones are stale.
crds:
	cargo run -q -p autoscaler -- crds --out-dir autoscaler/crds

# The main job: the spot scale-up scenario end to end on a local cluster (fake-ec2 + autoscaler).
demo: setup k8s-bins
	@echo "demo: building the Rust workspace (first time: about 5 minutes on 2 cores, bench/build-times.md), then the scenario"
	cargo run -p e2e -- demo $(if $(KEEP),--keep)

# The scenario suite: each scenario on a fresh local cluster, a summary table, an HTML report per
# scenario under $(CACHE_DIR)/reports and JUnit XML (JUNIT=path). Non-zero exit when one fails.
# BACKEND=kind runs them on kind clusters (Docker) instead of the local kwokctl binary runtime.
JUNIT ?= $(CACHE_DIR)/reports/junit.xml
BACKEND ?= local
# Scenarios run at once, each on its own cluster (JOBS=2); each one's lines are printed together.
# WALL_TIME=bench/results.md records the run's wall time there, as the row for its JOBS.
JOBS ?= 1
# Every result is recorded in bench/matrix-$(AUTOSCALER).json and the scenario × autoscaler matrix
# (bench/matrix.md, README) is rewritten from those files.
e2e: $(if $(filter local,$(BACKEND)),k8s-bins) $(if $(filter karpenter,$(AUTOSCALER)),karpenter-bin)
	cargo run -p e2e -- run --backend $(BACKEND) --autoscaler $(AUTOSCALER) --jobs $(JOBS) $(if $(WALL_TIME),--wall-time-to $(WALL_TIME)) --matrix --junit $(JUNIT) --report-dir $(CACHE_DIR)/reports $(SCENARIOS)

# A/B: each scenario (SCENARIOS, else the core five) with both autoscalers on the same seed: an HTML
# page per scenario under $(CACHE_DIR)/reports/compare and the summary bench/compare.md.
compare: k8s-bins karpenter-bin
	SPOTBENCH_COMMAND="make compare$(if $(SCENARIOS), SCENARIOS=\"$(SCENARIOS)\")" cargo run -p e2e -- compare --report-dir $(CACHE_DIR)/reports/compare $(SCENARIOS)

# An environment for manual play, until Ctrl-C: WORLD=, SEED= as for serve; AUTOSCALER=karpenter.
up: setup k8s-bins $(if $(filter karpenter,$(AUTOSCALER)),karpenter-bin)
	cargo run -p e2e -- up --world $(WORLD) --seed $(SEED) --autoscaler $(AUTOSCALER)

e2e-list:
	@cargo run -q -p e2e -- list

# fake-ec2 alone, serving the default world for hand-driven AWS CLI / boto3 sessions.
serve: setup build
	@echo "fake-ec2: world $(WORLD), seed $(SEED). Try, in another shell:"
	@echo "  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-west-2"
	@echo "  aws --endpoint-url http://127.0.0.1:$(PORT) ec2 describe-instance-types --instance-types m5.large"
	$(FAKE_EC2) serve --world $(WORLD) --seed $(SEED) --listen 127.0.0.1:$(PORT)

test: setup test-rust test-python

# The e2e tests bring up local clusters and run upstream Karpenter: build (or find cached) the
# Kubernetes binaries and Karpenter first, with progress shown, rather than inside a test.
# A failing run ends by repeating each failed test's message (cargo prints it mid-run, far from
# the end of a long log); the whole log stays in $(CACHE_DIR)/test-rust.log.
test-rust: k8s-bins karpenter-bin
	cargo build -p fake-ec2 --bins
	@mkdir -p $(CACHE_DIR); set -o pipefail; \
	cargo test --workspace --no-fail-fast 2>&1 | tee $(CACHE_DIR)/test-rust.log || { \
	  echo "=== test-rust failed; the failures, as cargo printed them ==="; \
	  sed -n '/^failures:$$/,/^test result:/p' $(CACHE_DIR)/test-rust.log | grep -v '^{"time' | tail -c 20000; \
	  exit 1; }

test-python: build
	FAKE_EC2_BIN=$(FAKE_EC2) $(PYTHON) -m pytest fake-ec2/tests/python -q -rs -p no:cacheprovider

# Property tests of every parser taking outside input (fake-ec2/tests/fuzz), random rounds until
# FUZZ_SECONDS (shared among them) is spent; `cargo test` runs a short fixed-seed pass of the same.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test -p fake-ec2 --test fuzz -- --test-threads=1 --nocapture
	cargo test -p userdata --test never_panics
	FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test -p e2e --test fuzz_scenarios -- --nocapture

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: setup
	cargo build --release -p fake-ec2 --bins
	$(PYTHON) bench/ec2_bench.py --no-build
	$(PYTHON) bench/sqs_bench.py
	cargo bench -p autoscaler --bench scheduling
	cargo bench -p autoscaler --bench consolidation
	cargo bench -p autoscaler --bench interruption
	$(MAKE) perf

# End-to-end performance on local clusters (pending -> Running for 10 to 10,000 pods, interruption
# notice -> replacement Ready, a FIS experiment against 500 spot nodes, the suite's wall time, peak
# RSS and CPU of every process) -> the section of bench/results.md, bench/e2e.json. A release build:
# the autoscaler runs as its own binary, as deployed. AUTOSCALER=karpenter for upstream Karpenter;
# each row is measured again with PEER (upstream Karpenter unless PEER=) right after, for the ratios.
perf: k8s-bins $(if $(filter karpenter,$(AUTOSCALER) $(PEER)),karpenter-bin)
	cargo build --release -p e2e -p autoscaler --bins
	$(CARGO_TARGET_DIR)/release/e2e perf --autoscaler $(AUTOSCALER) $(if $(PEER),--peer $(PEER))

clean-cache:
	rm -rf $(CACHE_DIR)

# Local Kubernetes control plane for e2e (no Docker): see e2e/k8s/. cluster.sh runs build.sh
# itself (a no-op when the binaries exist), so `eval "$(make -s cluster-up)"` sets KUBECONFIG.
K8S_ENV := SPOTBENCH_CACHE=$(CACHE_DIR)

k8s-bins:
	@$(K8S_ENV) bash e2e/k8s/build.sh

# Upstream Karpenter's controller and CRDs (e2e/k8s/build-karpenter.sh); the binary's path is the last line.
karpenter-bin:
	@$(K8S_ENV) bash e2e/k8s/build-karpenter.sh

cluster-up:
	@$(K8S_ENV) bash e2e/k8s/cluster.sh up $(NAME)

cluster-down:
	@test -n "$(NAME)" || { echo "usage: make cluster-down NAME=<cluster name>" >&2; exit 2; }
	@$(K8S_ENV) bash e2e/k8s/cluster.sh down $(NAME)

cluster-smoke:
	@$(K8S_ENV) bash e2e/k8s/cluster.sh smoke

# userdata's golden files, written by upstream Karpenter's own bootstrap package (the version pinned
# in userdata/golden-gen/go.mod) for the inputs in userdata/tests/golden/fixtures.json. Needs Go and
# the module proxy; the goldens are committed, the Go build output stays in $(CACHE_DIR)/go.
GO_ENV := GOMODCACHE=$(CACHE_DIR)/go/mod GOCACHE=$(CACHE_DIR)/go/build GOTOOLCHAIN=go1.26.11
.PHONY: userdata-golden
userdata-golden:
	cd userdata/golden-gen && $(GO_ENV) go run . ../tests/golden
