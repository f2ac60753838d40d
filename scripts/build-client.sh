#!/usr/bin/env bash
# Builds the web client into client/dist, which the Worker serves as static assets: the Leptos
# app's wasm (with the pinned wasm-bindgen), the stylesheet, and the browser libraries it uses
# (highlight.js, xterm.js), copied from node_modules, so nothing is fetched at build or run time.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
out=client/dist

cargo build -p agent-ops-client --target wasm32-unknown-unknown --profile client
rm -rf "$out.tmp"
mkdir -p "$out.tmp/pkg" "$out.tmp/vendor"
wasm-bindgen --target web --no-typescript --out-dir "$out.tmp/pkg" --out-name client \
  "$target/wasm32-unknown-unknown/client/agent_ops_client.wasm"
cp client/static/* "$out.tmp/"
cp node_modules/@highlightjs/cdn-assets/highlight.min.js "$out.tmp/vendor/"
cp node_modules/@highlightjs/cdn-assets/styles/github-dark.min.css "$out.tmp/vendor/highlight.css"
cp node_modules/@xterm/xterm/lib/xterm.js node_modules/@xterm/xterm/css/xterm.css \
  node_modules/@xterm/addon-fit/lib/addon-fit.js "$out.tmp/vendor/"
rm -rf "$out"
mv "$out.tmp" "$out"
