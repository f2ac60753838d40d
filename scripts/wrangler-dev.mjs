// `wrangler dev` for the Worker, with the DevTools inspector off unless asked for.
//
// The CLI always opens the inspector, and wrangler's inspector proxy then enables the runtime's
// Network domain and forwards every DevTools event to wrangler's node process, each as an HTTP
// request of its own: about a dozen per model call the agent makes (measured 13.5 -> 8.2 ms to
// the answer's first byte with it off). wrangler's programmatic `startWorker` can turn it off.
//
// Takes the subset of `wrangler dev`'s flags the platform uses, with the same meaning:
//   --config F --ip A --port P --persist-to D [--var K:V]... [--env-file F]... [--test-scheduled]
//   [--inspector-port P]   (DevTools on that port, as `wrangler dev` would open it)
import { parseArgs } from "node:util";
import { unstable_startWorker } from "wrangler";

const { values: a } = parseArgs({
  options: {
    config: { type: "string", default: "wrangler.toml" },
    ip: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    "persist-to": { type: "string" },
    var: { type: "string", multiple: true, default: [] },
    "env-file": { type: "string", multiple: true },
    "test-scheduled": { type: "boolean", default: false },
    "inspector-port": { type: "string" },
  },
});

const bindings = Object.fromEntries(
  a.var.map((kv) => {
    const at = kv.indexOf(":");
    if (at < 1) throw new Error(`--var takes KEY:VALUE, not ${kv}`);
    return [kv.slice(0, at), { type: "plain_text", value: kv.slice(at + 1), hidden: true }];
  }),
);

const worker = await unstable_startWorker({
  config: a.config,
  envFiles: a["env-file"],
  bindings,
  dev: {
    server: { hostname: a.ip, port: a.port && Number(a.port) },
    inspector: a["inspector-port"] ? { port: Number(a["inspector-port"]) } : false,
    persist: a["persist-to"],
    testScheduled: a["test-scheduled"],
    watch: false,
    liveReload: false,
  },
});
await worker.ready;

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await worker.dispose();
    process.exit(0);
  });
}
