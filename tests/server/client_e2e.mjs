// End-to-end: an independent ComfyUI API client from the npm registry
// (@stable-canvas/comfyui-client, with `ws` as Node 20's WebSocket) drives
// `vkflow serve`.  Usage: node client_e2e.mjs PORT VIEW_FILE AUTH_PORT TOKEN
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { Client, ComfyUIWorkflow, plugins } from "@stable-canvas/comfyui-client";
import WebSocket from "ws";

const [port, viewFile, authPort, token] = process.argv.slice(2);
let passed = 0;
async function step(name, fn) {
  await fn();
  passed++;
  console.error(`ok - ${name}`);
}

// Prompts pass a TestDelay node: this client attaches its websocket
// listeners only after POST /prompt has answered, so a prompt that finished
// within that time would leave it waiting (it would with ComfyUI too).

// Collects every output node's UI dict by node id.
const collect = (acc, output, { node_id }) => ({ ...acc, data: { ...(acc.data || {}), [node_id]: output } });

const client = new Client({ api_host: `127.0.0.1:${port}`, clientId: "node-e2e", WebSocket });

await step("connect over the websocket", async () => {
  assert.equal(await client.connect({ timeout_ms: 10000 }), true);
});

await step("enqueue, progress over the websocket, result", async () => {
  const progress = [];
  const prompt = {
    "1": { class_type: "TestSlowSteps", inputs: { steps: 5, ms_per_step: 20 } },
    "3": { class_type: "PreviewAny", inputs: { source: ["1", 0] } },
  };
  const out = await client.enqueue(prompt, { progress: (p) => progress.push(p), resolver: collect });
  assert.deepEqual(out.data, { "3": { text: ["5"] } });
  assert.equal(progress.length, 5);
  assert.deepEqual(progress.map((p) => p.value), [1, 2, 3, 4, 5]);
  assert.ok(progress.every((p) => p.max === 5 && p.node === "1" && p.prompt_id === out.prompt_id));
  // The client resolves on the first `executed` message, which comes before
  // the run ends and its history record is written (as in ComfyUI): wait
  // for the prompt to leave the queue first.
  await client.waitForPrompt(out.prompt_id, 50, 10000);
  const outputs = await client.getPromptOutputs(out.prompt_id);
  assert.deepEqual(outputs, { "3": { text: ["5"] } });
});

await step("workflow builder: invoke and wait", async () => {
  const wf = new ComfyUIWorkflow();
  const cls = wf.classes;
  const [text] = cls.PrimitiveString({ value: "hello from node" });
  const [later] = cls.TestDelay({ value: text, ms: 100 });
  cls.PreviewAny({ source: later });
  const out = await wf.invoke(client, { resolver: collect });
  assert.deepEqual(Object.values(out.data), [{ text: ["hello from node"] }]);
});

await step("enqueue_polling through /queue and /history", async () => {
  const prompt = {
    "1": { class_type: "PrimitiveInt", inputs: { value: 42 } },
    "9": { class_type: "TestDelay", inputs: { value: ["1", 0], ms: 100 } },
    "2": { class_type: "PreviewAny", inputs: { source: ["9", 0] } },
  };
  const out = await client.enqueue_polling(prompt, { polling_ms: 50, resolver: collect });
  assert.deepEqual(out.data, { "2": { text: ["42"] } });
});

await step("execution error reaches the client", async () => {
  const prompt = {
    "0": { class_type: "PrimitiveString", inputs: { value: "boom" } },
    "9": { class_type: "TestDelay", inputs: { value: ["0", 0], ms: 100 } },
    "1": { class_type: "TestFail", inputs: { message: ["9", 0] } },
    "2": { class_type: "PreviewAny", inputs: { source: ["1", 0] } },
  };
  await assert.rejects(client.enqueue(prompt), (e) => /boom/.test(e.message));
});

await step("validation error is a rejected enqueue", async () => {
  const prompt = { "1": { class_type: "PrimitiveInt", inputs: { value: 1 } } };
  await assert.rejects(client.enqueue(prompt),
    (e) => e.status === 400 && e.json.error.type === "prompt_no_outputs");
});

await step("interrupt a running prompt", async () => {
  const wf = new ComfyUIWorkflow();
  const [n] = wf.classes.TestSlowSteps({ steps: 1000, ms_per_step: 10 });
  wf.classes.PreviewAny({ source: n });
  const inst = wf.instance(client);
  await inst.enqueue();
  const started = new Promise((resolve) => inst.on("progress", resolve));
  const done = inst.wait();
  await started;
  await inst.interrupt();
  await assert.rejects(done, /interrupted/);
});

await step("queue, history, system stats, node definitions", async () => {
  // The interrupted prompt leaves the queue just after its
  // execution_interrupted message (as in ComfyUI).
  let q = await client.getQueue();
  for (let i = 0; i < 100 && q.Running.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    q = await client.getQueue();
  }
  assert.deepEqual(q, { Running: [], Pending: [] });
  const h = await client.getHistory(3);
  assert.equal(h.History.length, 3);
  assert.ok(h.History.every((r) => Array.isArray(r.prompt) && r.status && r.outputs));
  const stats = await client.getSystemStats();
  assert.ok(stats.system.ram_total > 0 && stats.devices.length >= 1);
  const defs = await client.getNodeDefs();
  assert.equal(defs.PreviewAny.output_node, true);
  assert.deepEqual(await client.getEmbeddings(), []);
});

await step("download a file through /view", async () => {
  const res = await fetch(client.viewURL(basename(viewFile), "", "output"));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "image/png");
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), readFileSync(viewFile));
});

client.close();

await step("token auth through the client's LoginAuthPlugin", async () => {
  const anon = new Client({ api_host: `127.0.0.1:${authPort}`, clientId: "anon", WebSocket });
  await assert.rejects(anon.getSystemStats(), (e) => e.status === 401);
  anon.close();
  const authed = new Client({ api_host: `127.0.0.1:${authPort}`, clientId: "authed", WebSocket });
  authed.use(new plugins.LoginAuthPlugin({ token }));
  assert.equal(await authed.connect({ timeout_ms: 10000 }), true);
  const prompt = {
    "1": { class_type: "PrimitiveString", inputs: { value: "with token" } },
    "9": { class_type: "TestDelay", inputs: { value: ["1", 0], ms: 100 } },
    "2": { class_type: "PreviewAny", inputs: { source: ["9", 0] } },
  };
  const out = await authed.enqueue(prompt, { resolver: collect });
  assert.deepEqual(out.data, { "2": { text: ["with token"] } });
  authed.close();
});

console.log(`${passed} passed, 0 failed`);
process.exit(0);
