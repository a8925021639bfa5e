# The two commands: `make demo` and `make test`. See README.md.
.PHONY: test demo demo-down build cluster-build fmt clippy unit

test:
	tests/scripts/make-test.sh

demo:
	tests/scripts/demo.sh up

demo-down:
	tests/scripts/demo.sh down

build:
	cargo build --workspace --release --locked

cluster-build:
	tests/cluster/build.sh all

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

unit:
	cargo test --workspace --locked --lib --bins
