// Shared by the contract and docs tests: loads the npm tools from tools/node_modules (exit 77 = skip
// when they are not installed) and runs `quiver serve` on a random loopback port.
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const SKIP = 77;

function requireTool(modulesDir, name) {
  try {
    return require(path.resolve(modulesDir, name));
  } catch (e) {
    console.log(`SKIP: npm package '${name}' is not installed in ${modulesDir} (run scripts/install-deps)`);
    process.exit(SKIP);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Starts `quiver serve` on a fresh data directory; resolves to {base, stop()}.
async function startServer(quiver, extraArgs = []) {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), "quiver-api-"));
  const port = await freePort();
  const proc = spawn(quiver, ["serve", "--data", data, "--port", String(port), "--threads", "4", ...extraArgs],
                     { stdio: ["ignore", "ignore", "pipe"] });
  // A test that ends early (an exception, process.exit) must not leave the server running.
  process.on("exit", () => { if (proc.exitCode === null) proc.kill("SIGKILL"); });
  let stderr = "";
  let stopping = false;
  proc.stderr.on("data", (d) => { stderr += d; });
  proc.on("exit", (code, signal) => {
    if (!stopping) console.log(`FAIL quiver serve exited unexpectedly (code ${code}, signal ${signal}):\n${stderr}`);
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; ++i) {
    if (proc.exitCode !== null) throw new Error(`quiver serve exited ${proc.exitCode}: ${stderr}`);
    try {
      const r = await fetch(base + "/v1/healthz");
      if (r.status === 200) break;
    } catch (e) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base, port, data,
    stderr: () => stderr,
    stop: async () => {
      stopping = true;
      proc.kill("SIGTERM");
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
      fs.rmSync(data, { recursive: true, force: true });
    },
  };
}

module.exports = { SKIP, requireTool, startServer };
