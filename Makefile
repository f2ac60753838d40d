# Agent Ops. `make dev` runs the platform locally; `make test` runs every test. Both set up
# whatever is missing first (scripts/setup.sh), so they work on a fresh machine.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target
export WRANGLER_SEND_METRICS := false
BIN := $(CARGO_TARGET_DIR)/debug

.PHONY: setup worker client native dev test lint unit e2e bench openapi clean

setup:
	@scripts/setup.sh

# wasm-opt from the npm registry's binaryen (pinned in package-lock.json): worker-build would
# download its own, and Debian's predates the exception handling the Worker's panics unwind with.
# The features are the module's own; -O3 because the session object's every frame runs through it.
WASM_OPT := node_modules/.bin/wasm-opt -O3 --enable-exception-handling --enable-reference-types \
	--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
	--enable-mutable-globals --enable-multivalue

# The Worker, compiled to wasm with the pinned local wasm-bindgen and wrangler's own esbuild,
# then optimized.
worker: setup
	cd worker && WASM_BINDGEN_BIN=$$(command -v wasm-bindgen) ESBUILD_BIN=$(CURDIR)/node_modules/.bin/esbuild \
		worker-build --release --no-opt
	$(WASM_OPT) worker/build/index_bg.wasm -o worker/build/index_bg.wasm

# The web client: Leptos compiled to wasm, with its stylesheet and vendored browser libraries.
client: setup
	@scripts/build-client.sh

native: setup
	cargo build -p sandbox-runner -p sandbox-provider -p scripted-model

dev: worker client native
	@scripts/dev.sh

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

unit: setup
	cargo test --workspace --exclude e2e --features agent-ops-protocol/schema

# End-to-end tests share loopback ports and the two cores: one at a time.
e2e: worker client native
	cargo test -p e2e --tests -- --test-threads=1

test: lint unit e2e

# Benchmarks measure release builds (the harness runs the runner of its own profile).
# The benchmarks' Worker is the production one plus their baseline objects (`--features bench`),
# built beside it into worker/build-bench; the harness binds those objects itself.
bench: worker
	cd worker && WASM_BINDGEN_BIN=$$(command -v wasm-bindgen) ESBUILD_BIN=$(CURDIR)/node_modules/.bin/esbuild \
		worker-build --release --no-opt --out-dir build-bench . --features bench
	$(WASM_OPT) worker/build-bench/index_bg.wasm -o worker/build-bench/index_bg.wasm
	cargo build --release -p sandbox-runner -p sandbox-provider -p e2e --bin sandbox-runner --bin sandbox-provider --bin bench
	$(CARGO_TARGET_DIR)/release/bench

# The OpenAPI document, written from the route table and the body types; commit what it writes
# (e2e's contract test fails while the committed one differs).
openapi:
	cargo run -q -p agent-ops-protocol --features schema --bin openapi > worker/openapi.json

clean:
	rm -rf target worker/build worker/build-bench client/dist .state
