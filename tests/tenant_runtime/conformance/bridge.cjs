// Drives Backstage's own CatalogClient for the Python conformance tests: reads one JSON
// request per line on stdin ({"method", "args"}) and answers one JSON line on stdout,
// {"ok": true, "value"} or {"ok": false, "error": {name, message, statusCode}}.
// Async generators (streamEntities, streamLocations) are drained into a list of pages.
"use strict";

const path = require("node:path");
const readline = require("node:readline");

const installDir = process.env.CATALOG_CLIENT_DIR;
const baseUrl = process.env.CATALOG_BASE_URL;
const token = process.env.CATALOG_TOKEN;
const { CatalogClient } = require(path.join(installDir, "node_modules", "@backstage", "catalog-client"));

const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => baseUrl },
  fetchApi: { fetch: (input, init) => fetch(input, init) },
});

async function call(method, args) {
  const options = token ? { token } : undefined;
  // Options always come last: pad the optional arguments the test left out.
  const padded = [...args];
  while (padded.length < client[method].length - 1) padded.push(undefined);
  const result = client[method](...padded, options);
  if (result && typeof result[Symbol.asyncIterator] === "function") {
    const pages = [];
    for await (const page of result) pages.push(page);
    return pages;
  }
  return await result;
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const { method, args } = JSON.parse(line);
  let answer;
  try {
    if (method === "$methods") {
      const names = Object.getOwnPropertyNames(Object.getPrototypeOf(client));
      process.stdout.write(JSON.stringify({ ok: true, value: names }) + "\n");
      return;
    }
    if (typeof client[method] !== "function") throw new Error(`no client method ${method}`);
    const value = await call(method, args || []);
    answer = { ok: true, value: value === undefined ? null : value };
  } catch (error) {
    answer = {
      ok: false,
      error: {
        name: error.name,
        message: error.message,
        statusCode: error.statusCode ?? error.response?.status ?? null,
        bodyName: error.body?.error?.name ?? null,
      },
    };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
