// Drives the VS Code extension-host test: code-server's VS Code server with
// the smoke-test driver, opened in headless Chromium by playwright-core, with
// the packaged extension as the development extension and suite/ as the tests.
// Usage: node run.mjs  (env: CODE_SERVER_DIR, EXTENSION_DIR, WORKSPACE, RESULTS, WORK, INFILL_TIMEOUT_S)
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const env = process.env;
const here = path.dirname(fileURLToPath(import.meta.url));
const codeServer = env.CODE_SERVER_DIR; // .../node_modules/code-server
const work = env.WORK;
const results = env.RESULTS;
const timeoutMs = Number(env.INFILL_TIMEOUT_S || 300) * 1000;
const require = createRequire(path.join(codeServer, "..", "playwright-core", "package.json"));
const { chromium } = require("playwright-core");

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const port = await freePort();
  const serverData = path.join(work, "server-data");
  fs.mkdirSync(path.join(serverData, "data", "User"), { recursive: true });
  const userSettings = JSON.stringify({
    "security.workspace.trust.enabled": false,
    "workbench.startupEditor": "none",
    "telemetry.telemetryLevel": "off",
    "extensions.autoUpdate": false,
    "extensions.autoCheckUpdates": false,
  });
  fs.writeFileSync(path.join(serverData, "data", "User", "settings.json"), userSettings);
  const log = fs.openSync(path.join(work, "server.log"), "a");
  // setsid: the server and everything it starts (extension host, infill)
  // form one process group, ended together below.
  const server = spawn(
    "setsid",
    [
      process.execPath,
      path.join(codeServer, "lib", "vscode", "out", "server-main.js"),
      "--host", "127.0.0.1",
      "--port", String(port),
      "--without-connection-token",
      "--enable-smoke-test-driver",
      "--accept-server-license-terms",
      "--disable-telemetry",
      "--server-data-dir", serverData,
      "--user-data-dir", path.join(serverData, "data"),
      "--extensions-dir", path.join(work, "extensions"),
    ],
    {
      stdio: ["ignore", log, log],
      env: {
        ...env,
        INFILL_RESULTS: results,
        INFILL_EXTENSION_DIR: env.EXTENSION_DIR,
        // No extension gallery: nothing is fetched from outside this machine.
        EXTENSIONS_GALLERY: "{}",
      },
    },
  );
  const killServer = () => {
    try {
      process.kill(-server.pid, "SIGKILL");
    } catch {}
  };
  process.on("exit", killServer);
  let browser;
  try {
    // Wait for the server to listen.
    const up = Date.now() + 60000;
    for (;;) {
      const ok = await new Promise((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => {
          s.end();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > up || server.exitCode !== null) throw new Error("the VS Code server did not start; see server.log");
      await sleep(200);
    }
    // Paths on the server side, as the remote extension host sees them.
    const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
    const payload = JSON.stringify([
      ["extensionDevelopmentPath", remote(env.EXTENSION_DIR)],
      ["extensionTestsPath", remote(path.join(here, "suite"))],
    ]);
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(env.WORKSPACE)}&payload=${encodeURIComponent(payload)}`;
    browser = await chromium.launch({
      executablePath: env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const page = await browser.newPage();
    const consoleLog = fs.createWriteStream(path.join(work, "browser-console.log"));
    page.on("console", (m) => consoleLog.write(`[${m.type()}] ${m.text()}\n`));
    page.on("pageerror", (e) => consoleLog.write(`[pageerror] ${e.message}\n`));
    await page.goto(url);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const text = fs.existsSync(results) ? fs.readFileSync(results, "utf8") : "";
      if (/^CHECK_STATUSBAR$/m.test(text) && !fs.existsSync(`${results}.statusbar`)) {
        // The suite waits here: check the status bar as a person sees it.
        await sleep(500);
        await page.screenshot({ path: path.join(work, "statusbar.png") }).catch(() => {});
        const items = await page
          .locator(".statusbar-item")
          .evaluateAll((els) => els.map((e) => ({ id: e.id, text: e.innerText, label: e.getAttribute("aria-label") })))
          .catch((e) => [{ id: "error", text: String(e) }]);
        fs.writeFileSync(path.join(work, "statusbar.json"), JSON.stringify(items, null, 1));
        const ours = items.find((i) => /infill/i.test(i.id) && /infill/.test(i.text));
        fs.appendFileSync(
          results,
          ours
            ? `PASS vscode: the window's status bar shows the infill item (${JSON.stringify(ours.label)})\n`
            : `FAIL vscode: the window's status bar shows the infill item: ${JSON.stringify(items)}\n`,
        );
        fs.writeFileSync(`${results}.statusbar`, "checked\n");
      }
      if (/^DONE$/m.test(text)) break;
      if (Date.now() > end) {
        fs.appendFileSync(results, `FAIL vscode: the extension-host tests finished within ${timeoutMs / 1000} s\n`);
        await page.screenshot({ path: path.join(work, "timeout.png") }).catch(() => {});
        break;
      }
      await sleep(500);
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
    killServer();
  }
}

main().catch((e) => {
  fs.appendFileSync(results, `FAIL vscode: driver: ${String(e && e.stack ? e.stack : e).replace(/\n/g, "\\n")}\n`);
  process.exitCode = 1;
});
