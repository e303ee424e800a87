#!/usr/bin/env node
// A Node.js client of Analytics Mesh: signs in, then calls every service over
// gRPC (the protos in protos/ and protos/third_party, loaded at run time with
// @grpc/proto-loader) and over REST through Envoy (fetch), printing each reply.
//
// Settings (command-line flags win over environment variables):
//   --analytics HOST:PORT  MESH_ANALYTICS_ADDR  analytics gRPC (also AuthService)   default 127.0.0.1:50051
//   --llm HOST:PORT        MESH_LLM_ADDR        llm gRPC                             default 127.0.0.1:50052
//   --notify HOST:PORT     MESH_NOTIFY_ADDR     notify gRPC                          default 127.0.0.1:50053
//   --rest URL             MESH_REST_URL        REST API through Envoy              default http://127.0.0.1:18080
//   --username NAME        MESH_USERNAME        sign in with Login (with the password)
//   --password SECRET      MESH_PASSWORD
//   --token JWT            MESH_TOKEN           an access token instead of signing in
//   --protos DIR           MESH_PROTOS_DIR      default: ../../protos from this file
//
// Each step prints one line "<transport> <step>: <JSON>"; the last line is a
// JSON summary. Exit status 0 when every step did what it should, 1 otherwise.

import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: flags } = parseArgs({
  options: {
    analytics: { type: "string" },
    llm: { type: "string" },
    notify: { type: "string" },
    rest: { type: "string" },
    username: { type: "string" },
    password: { type: "string" },
    token: { type: "string" },
    protos: { type: "string" },
  },
});
const env = process.env;
const settings = {
  analytics: flags.analytics ?? env.MESH_ANALYTICS_ADDR ?? "127.0.0.1:50051",
  llm: flags.llm ?? env.MESH_LLM_ADDR ?? "127.0.0.1:50052",
  notify: flags.notify ?? env.MESH_NOTIFY_ADDR ?? "127.0.0.1:50053",
  rest: (flags.rest ?? env.MESH_REST_URL ?? "http://127.0.0.1:18080").replace(/\/$/, ""),
  username: flags.username ?? env.MESH_USERNAME,
  password: flags.password ?? env.MESH_PASSWORD,
  token: flags.token ?? env.MESH_TOKEN,
  protos: flags.protos ?? env.MESH_PROTOS_DIR ?? path.resolve(here, "..", "..", "protos"),
};

const CALL_TIMEOUT_MS = 15_000;
const RESULT_TIMEOUT_MS = 120_000;
const START_US = 1_700_000_000_000_000n;
const STEP_US = 60_000_000n;

// Proto3 JSON conventions on the gRPC side too: camelCase fields, enums by name,
// int64 as strings, defaults filled in.
const definitions = protoLoader.loadSync(
  [
    "mesh/auth/v1/auth_service.proto",
    "mesh/analytics/v1/analytics_service.proto",
    "mesh/llm/v1/llm_service.proto",
    "mesh/notify/v1/notify_service.proto",
  ],
  {
    includeDirs: [settings.protos, path.join(settings.protos, "third_party")],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  },
);
const api = grpc.loadPackageDefinition(definitions);

function stub(Service, address, token) {
  const client = new Service(address, grpc.credentials.createInsecure());
  // Every call carries the token and a deadline; each method returns a promise.
  const call = (method, request) =>
    new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      if (token) metadata.set("authorization", `Bearer ${token}`);
      client[method](request, metadata, { deadline: Date.now() + CALL_TIMEOUT_MS }, (error, reply) =>
        error ? reject(error) : resolve(reply),
      );
    });
  return { call, close: () => client.close() };
}

function show(transport, step, value) {
  console.log(`${transport} ${step}: ${JSON.stringify(value)}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function points(count) {
  const timestampsUs = [];
  const values = [];
  for (let i = 0; i < count; i += 1) {
    timestampsUs.push(String(START_US + BigInt(i) * STEP_US));
    values.push(i === Math.floor(count / 2) ? 500 : 10 + (i % 7));
  }
  return { timestampsUs, values };
}

async function until(read, done, what) {
  const deadline = Date.now() + RESULT_TIMEOUT_MS;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

const finished = (result) => ["RESULT_STATUS_SUCCEEDED", "RESULT_STATUS_FAILED"].includes(result.status);

async function signIn() {
  if (settings.token) return settings.token;
  if (!settings.username || !settings.password) {
    throw new Error("give --token, or --username and --password (or MESH_TOKEN, MESH_USERNAME, MESH_PASSWORD)");
  }
  const auth = stub(api.mesh.auth.v1.AuthService, settings.analytics);
  try {
    const reply = await auth.call("login", { username: settings.username, password: settings.password });
    show("grpc", "Login", { name: reply.session.principal.name, role: reply.session.principal.role });
    return reply.session.accessToken;
  } finally {
    auth.close();
  }
}

async function overGrpc(token) {
  const auth = stub(api.mesh.auth.v1.AuthService, settings.analytics, token);
  const analytics = stub(api.mesh.analytics.v1.AnalyticsService, settings.analytics, token);
  const llm = stub(api.mesh.llm.v1.LlmService, settings.llm, token);
  const notify = stub(api.mesh.notify.v1.NotifyService, settings.notify, token);
  try {
    const me = await auth.call("whoAmI", {});
    show("grpc", "WhoAmI", me);

    const name = `node-grpc-${randomUUID().slice(0, 8)}`;
    const { dataset } = await analytics.call("createDataset", { dataset: { name, unit: "ms", labels: { client: "node" } } });
    show("grpc", "CreateDataset", dataset);
    const appended = await analytics.call("appendPoints", { datasetId: dataset.id, ...points(60) });
    show("grpc", "AppendPoints", { acceptedCount: appended.acceptedCount, rejectedCount: appended.rejectedCount });

    const queued = await analytics.call("runAnalysis", { datasetId: dataset.id, kind: "ANALYSIS_KIND_REPORT" });
    show("grpc", "RunAnalysis", { id: queued.result.id, status: queued.result.status });
    const { result } = await until(
      () => analytics.call("getResult", { id: queued.result.id }),
      (reply) => finished(reply.result),
      "the gRPC result",
    );
    show("grpc", "GetResult", { id: result.id, status: result.status, summary: result.output.summary });

    const completion = await llm.call("complete", {
      messages: [{ role: "ROLE_USER", content: `mean ${result.output.summary.mean}, max ${result.output.summary.max}` }],
    });
    show("grpc", "Complete", { text: completion.text, provider: completion.provider, finishReason: completion.finishReason });

    const email = `node-${randomUUID().slice(0, 8)}@example.com`;
    const { subscription } = await notify.call("createSubscription", { subscription: { email, datasetIds: [dataset.id] } });
    const listed = await notify.call("listSubscriptions", { pageSize: 1000 });
    show("grpc", "ListSubscriptions", { count: listed.subscriptions.length, created: subscription.email });
    await notify.call("deleteSubscription", { id: subscription.id });

    return {
      name: me.principal.name,
      role: me.principal.role,
      datasetId: dataset.id,
      pointCount: appended.dataset.pointCount,
      resultStatus: result.status,
      resultCount: result.output.summary.count,
      completionProvider: completion.provider,
      completionText: completion.text,
      subscriptionListed: listed.subscriptions.some((s) => s.email === email),
    };
  } finally {
    for (const client of [auth, analytics, llm, notify]) client.close();
  }
}

async function overRest(token) {
  const request = async (method, route, body, expectStatus = 200) => {
    const response = await fetch(`${settings.rest}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    const text = await response.text();
    if (response.status !== expectStatus) {
      throw new Error(`${method} ${route}: HTTP ${response.status} (expected ${expectStatus}): ${text}`);
    }
    return JSON.parse(text);
  };

  const me = await request("GET", "/v1/auth/me");
  show("rest", "GET /v1/auth/me", me);
  const { dataset } = await request("POST", "/v1/datasets", { name: `node-rest-${randomUUID().slice(0, 8)}`, unit: "ms" });
  show("rest", "POST /v1/datasets", dataset);
  const appended = await request("POST", `/v1/datasets/${dataset.id}/points:append`, points(60));
  show("rest", "POST points:append", { acceptedCount: appended.acceptedCount, rejectedCount: appended.rejectedCount });
  const queued = await request("POST", `/v1/datasets/${dataset.id}:analyze`, { kind: "ANALYSIS_KIND_SUMMARY" });
  show("rest", "POST :analyze", { id: queued.result.id, status: queued.result.status });
  const { result } = await until(
    () => request("GET", `/v1/results/${queued.result.id}`),
    (reply) => finished(reply.result),
    "the REST result",
  );
  show("rest", "GET /v1/results/{id}", { id: result.id, status: result.status, summary: result.output.summary });
  const completion = await request("POST", "/v1/completions", {
    messages: [{ role: "ROLE_USER", content: `mean ${result.output.summary.mean}` }],
  });
  show("rest", "POST /v1/completions", { text: completion.text, provider: completion.provider });
  const subscriptions = await request("GET", "/v1/subscriptions?pageSize=10");
  show("rest", "GET /v1/subscriptions", { count: subscriptions.subscriptions.length });
  const missing = await request("GET", "/v1/datasets/00000000-0000-4000-8000-000000000000", undefined, 404);
  show("rest", "GET a missing dataset", missing);

  return {
    name: me.principal.name,
    datasetId: dataset.id,
    pointCount: appended.dataset.pointCount,
    resultStatus: result.status,
    resultCount: result.output.summary.count,
    completionProvider: completion.provider,
    subscriptionsListed: Array.isArray(subscriptions.subscriptions),
    missingDatasetCode: missing.code,
  };
}

try {
  const token = await signIn();
  const summary = { grpc: await overGrpc(token), rest: await overRest(token) };
  const ok =
    summary.grpc.resultStatus === "RESULT_STATUS_SUCCEEDED" &&
    summary.rest.resultStatus === "RESULT_STATUS_SUCCEEDED" &&
    summary.grpc.subscriptionListed &&
    summary.rest.missingDatasetCode === 5;
  console.log(JSON.stringify({ ok, ...summary }));
  process.exitCode = ok ? 0 : 1;
} catch (error) {
  console.error(`mesh node client: ${error.message ?? error}`);
  console.log(JSON.stringify({ ok: false, error: String(error.message ?? error) }));
  process.exitCode = 1;
}
