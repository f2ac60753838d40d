#!/usr/bin/env bash
# Runs the whole platform locally: D1 migrations, the sandbox provider, the model (a real one if
# a key is configured, the scripted one otherwise) and `wrangler dev` serving the Worker.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_PORT=${WORKER_PORT:-8787}
PROVIDER_PORT=${PROVIDER_PORT:-8790}
MODEL_PORT=${MODEL_PORT:-8791}
BIN=${CARGO_TARGET_DIR:-target}/debug
mkdir -p .state

# Local secrets, generated once and kept out of git (and hidden from every sandbox).
if [ ! -f .dev.vars ]; then
  umask 077
  printf 'ADMIN_API_KEY=%s\nPROVIDER_SECRET=%s\n' "aok_$(openssl rand -hex 24)" "$(openssl rand -hex 32)" > .dev.vars
fi
if ! grep -q '^AUTH_SECRET=' .dev.vars; then
  printf 'AUTH_SECRET=%s\n' "$(openssl rand -hex 32)" >> .dev.vars
fi
if ! grep -q '^VAULT_KEYS=' .dev.vars; then
  printf 'VAULT_KEYS=k1:%s\n' "$(openssl rand -hex 32)" >> .dev.vars
fi
ADMIN_API_KEY=$(sed -n 's/^ADMIN_API_KEY=//p' .dev.vars)
PROVIDER_SECRET=$(sed -n 's/^PROVIDER_SECRET=//p' .dev.vars)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f .state/model.vars; }
trap cleanup EXIT INT TERM

vars=(--var "SANDBOX_PROVIDER_URL:http://127.0.0.1:$PROVIDER_PORT" --var ENVIRONMENT:development
  --var "PUBLIC_URL:http://127.0.0.1:$WORKER_PORT"
  --var "SANDBOX_ORIGIN:http://{session}.sandbox.localhost:$WORKER_PORT")
model_key=""
if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  vars+=(--var MODEL_PROVIDER:anthropic --var "DEFAULT_MODEL:${DEFAULT_MODEL:-claude-sonnet-4-5}")
  model_key=$ANTHROPIC_API_KEY
  echo "model: Anthropic (${DEFAULT_MODEL:-claude-sonnet-4-5})"
elif [ -n "${OPENAI_API_KEY:-}" ]; then
  vars+=(--var MODEL_PROVIDER:openai --var "DEFAULT_MODEL:${DEFAULT_MODEL:-gpt-5}")
  model_key=$OPENAI_API_KEY
  echo "model: OpenAI (${DEFAULT_MODEL:-gpt-5})"
elif [ -n "${MODEL_BASE_URL:-}" ]; then
  vars+=(--var MODEL_PROVIDER:openai-compatible --var "MODEL_BASE_URL:$MODEL_BASE_URL" --var "DEFAULT_MODEL:${DEFAULT_MODEL:-default}")
  model_key=${MODEL_API_KEY:-}
  echo "model: OpenAI-compatible at $MODEL_BASE_URL"
else
  echo "model: no ANTHROPIC_API_KEY, OPENAI_API_KEY or MODEL_BASE_URL is set, so the agent talks to the"
  echo "       SCRIPTED model (answers are canned; directives like '@write file.txt text' make it act)."
  "$BIN/scripted-model" --listen "127.0.0.1:$MODEL_PORT" &
  pids+=($!)
  vars+=(--var MODEL_PROVIDER:openai-compatible --var "MODEL_BASE_URL:http://127.0.0.1:$MODEL_PORT/v1" --var DEFAULT_MODEL:scripted)
fi

node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to .state/wrangler >/dev/null

# The model's key goes to the Worker alone, which adds it to the agent's calls: no sandbox holds
# it. In a file only this user reads (and no sandbox sees), not on wrangler's command line.
rm -f .state/model.vars
if [ -n "$model_key" ]; then
  (umask 077 && printf 'MODEL_API_KEY=%s\n' "$model_key" > .state/model.vars)
  vars+=(--env-file .dev.vars --env-file .state/model.vars)
fi

AGENT_OPS_WEBSOCKIFY="$PWD/.tools/websockify/bin/websockify" \
AGENT_OPS_CODE_SERVER="$PWD/.tools/code-server" \
AGENT_OPS_PROVIDER_SECRET="$PROVIDER_SECRET" \
"$BIN/sandbox-provider" \
  --listen "127.0.0.1:$PROVIDER_PORT" --root .state/sandboxes --allow-port "$WORKER_PORT" \
  --opencode-bin "$PWD/node_modules/.bin/opencode" --hide "$PWD/.dev.vars" --hide "$PWD/.state/wrangler" \
  --hide "$PWD/.state/model.vars" \
  >>.state/provider.log 2>&1 &
pids+=($!)

cat <<MSG

Agent Ops is starting on http://127.0.0.1:$WORKER_PORT
  admin API key:  $ADMIN_API_KEY   (from .dev.vars)
  sandboxes:      .state/sandboxes/<session>/{workspace,runner.log}

Try it:
  curl -s -X POST http://127.0.0.1:$WORKER_PORT/api/sessions -H "authorization: Bearer $ADMIN_API_KEY" \\
       -d '{"prompt": "Write a greeting.\n@write hello.txt Hello!\n@say I wrote hello.txt."}'
  curl -s http://127.0.0.1:$WORKER_PORT/api/sessions/<id>/events -H "authorization: Bearer $ADMIN_API_KEY"
  # sign in as a person (development only; the first one becomes the admin):
  curl -s -X POST http://127.0.0.1:$WORKER_PORT/auth/dev/login -d '{"login": "you"}'

MSG

# workerd runs no cron of its own here (and its test hook cannot reach a Worker that serves
# assets): the scheduler's minute is run through its admin route, as Cloudflare's cron trigger
# runs it when deployed. A tick that comes twice fires nothing twice.
(while sleep 60; do
  curl -s -o /dev/null -X POST -H "authorization: Bearer $ADMIN_API_KEY" -d '{}' \
    "http://127.0.0.1:$WORKER_PORT/api/admin/scheduler/tick" || true
done) &
pids+=($!)

# wrangler dev, with DevTools only when asked for (INSPECTOR_PORT): its inspector costs every
# subrequest the Worker makes (see scripts/wrangler-dev.mjs).
node scripts/wrangler-dev.mjs --ip 127.0.0.1 --port "$WORKER_PORT" --persist-to .state/wrangler \
  --test-scheduled ${INSPECTOR_PORT:+--inspector-port "$INSPECTOR_PORT"} "${vars[@]}"
