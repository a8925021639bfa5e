# The two commands: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
.PHONY: bench bench-protocols bench-scale test demo demo-down demo-shell build release cluster-build fmt clippy unit lint-docker

test:
	tests/scripts/make-test.sh

# The data plane against nginx and HAProxy (HTTP/1.1, then TLS handshakes, HTTP/2, memory and
# latency), then the control plane at scale (issue #9).
bench:
	tests/bench/run.sh && tests/bench/protocols.sh && tests/bench/scale.sh

bench-protocols:
	tests/bench/protocols.sh

bench-scale:
	tests/bench/scale.sh

demo:
	tests/scripts/demo.sh up

demo-down:
	tests/scripts/demo.sh down

demo-shell:
	tests/scripts/demo.sh shell

build:
	cargo build --workspace --locked --bins

# The release binaries; the Dockerfile runs exactly this.
release:
	cargo build --release --locked -p sluice-operator -p sluice-dataplane

lint-docker:
	"$$(sed -n 's/^HADOLINT=//p' < <(tests/scripts/tools.sh))" Dockerfile

cluster-build:
	tests/cluster/build.sh all

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

unit:
	cargo test --workspace --locked --lib --bins
