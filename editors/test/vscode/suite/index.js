// Runs inside VS Code's extension host (extensionTestsPath): the packaged
// infill extension against the real server and model. One line per check
// is appended to $INFILL_RESULTS ("PASS name" / "FAIL name: why"), then "DONE".
const vscode = require("vscode");
const fs = require("fs");
const path = require("path");

const results = process.env.INFILL_RESULTS;
let failed = 0;
function record(ok, name, why) {
  if (!ok) failed++;
  const line = ok ? `PASS vscode: ${name}` : `FAIL vscode: ${name}: ${String(why).replace(/\n/g, "\\n")}`;
  fs.appendFileSync(results, line + "\n");
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, ms, step = 200) {
  const end = Date.now() + ms;
  for (;;) {
    let v;
    try {
      v = await fn();
    } catch (e) {
      v = undefined;
    }
    if (v) return v;
    if (Date.now() > end) return undefined;
    await sleep(step);
  }
}

async function main() {
  const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
  if (!record(!!folder, "the fixture workspace is open", "no workspace folder")) return;
  const file = path.join(folder.uri.fsPath, "fib.py");
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  const editor = await vscode.window.showTextDocument(doc);

  const ext = vscode.extensions.getExtension("infill.infill");
  if (!record(!!ext, "the infill extension is installed", "not found")) return;
  record(
    ext.extensionPath === process.env.INFILL_EXTENSION_DIR,
    "it is the packaged extension (unpacked from the .vsix)",
    `${ext.extensionPath} != ${process.env.INFILL_EXTENSION_DIR}`,
  );
  const api = ext.isActive ? ext.exports : await ext.activate();
  const ready = await waitFor(async () => {
    const s = await api.refresh();
    return s && s.model !== "loading" && s;
  }, 120000);
  if (!record(ready && ready.model === "ready", "the extension starts the server and the model loads", JSON.stringify(ready))) return;
  record(/sparkle/.test(api.statusText()), "the status bar shows ready", api.statusText());
  const client = api.client();
  const uri = doc.uri.toString();
  const same = await client.sendRequest("infill/documentText", { uri });
  record(same.text === doc.getText(), "the server has the open document", JSON.stringify(same));

  // Type a line, a key at a time, after `        return n` (line 4).
  const typed = "    return fibonacci(n - 1) + ";
  await editor.edit((e) => e.insert(new vscode.Position(4, 0), "\n"));
  editor.selection = new vscode.Selection(4, 0, 4, 0);
  for (const ch of typed) {
    await vscode.commands.executeCommand("type", { text: ch });
  }
  record(doc.lineAt(4).text === typed, "typing reaches the document", JSON.stringify(doc.lineAt(4).text));
  let committed;
  const deadline = Date.now() + 90000;
  while (!committed && Date.now() < deadline) {
    await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    const sug = await waitFor(() => {
      const s = api.lastSuggestion();
      return s && s.uri === uri && s;
    }, 5000);
    await sleep(500);
    await vscode.commands.executeCommand("editor.action.inlineSuggest.commit");
    await sleep(300);
    if (doc.lineAt(4).text !== typed) committed = { sug, line: doc.lineAt(4).text };
  }
  if (record(!!committed, "an inline suggestion is triggered and committed", "the line never changed")) {
    const { sug, line } = committed;
    record(sug && line === typed + sug.text.split("\n")[0], "the document holds the suggestion", JSON.stringify({ line, sug }));
    const after = await waitFor(async () => {
      const r = await client.sendRequest("infill/documentText", { uri });
      return r.text === doc.getText() && r;
    }, 5000);
    record(!!after, "the server's copy matches after the commit", "differs");
  }

  // A changed setting reaches the server: a model path that does not exist
  // makes it reload and fail, with the path in the reason.
  const cfg = () => vscode.workspace.getConfiguration("infill");
  const missing = path.join(folder.uri.fsPath, "no-such-model.gguf");
  await cfg().update("model.path", missing, vscode.ConfigurationTarget.Workspace);
  const failedLoad = await waitFor(async () => {
    const s = await api.refresh();
    return s && s.model === "failed" && s;
  }, 30000);
  record(
    failedLoad && failedLoad.detail.includes("no-such-model.gguf"),
    "a changed setting (infill.model.path) reaches the server",
    JSON.stringify(failedLoad),
  );
  record(/error/.test(api.statusText()) && /no-such-model/.test(api.statusText()), "the status bar shows the error", api.statusText());
  await cfg().update("model.path", undefined, vscode.ConfigurationTarget.Workspace);
  const back = await waitFor(async () => {
    const s = await api.refresh();
    return s && s.model === "ready" && s;
  }, 60000);
  record(!!back, "resetting the setting reloads the default model", "not ready");
  record(!/error/.test(api.statusText()), "the status bar clears the error", api.statusText());

  // Toggle automatic suggestions, and back.
  const before = cfg().get("enableAutoSuggestions");
  await vscode.commands.executeCommand("infill.toggleAutoSuggestions");
  const off = await waitFor(() => cfg().get("enableAutoSuggestions") === !before, 5000);
  record(off && /circle-slash/.test(api.statusText()), "the toggle command turns automatic suggestions off", api.statusText());
  // Off: typing asks for nothing; an explicit trigger still does.
  const line = doc.lineAt(4);
  editor.selection = new vscode.Selection(4, line.text.length, 4, line.text.length);
  const count = api.suggestionCount();
  const asked = api.requestCounts();
  for (const ch of "\n    x = fib") {
    await vscode.commands.executeCommand("type", { text: ch });
    await sleep(100);
  }
  await sleep(3000);
  const now = api.requestCounts();
  record(
    now.automatic > asked.automatic && now.sent === asked.sent && api.suggestionCount() === count,
    "with automatic suggestions off, VS Code's automatic requests are not sent to the server",
    JSON.stringify({ asked, now }),
  );
  const explicit = await waitFor(async () => {
    await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    await sleep(1000);
    return api.suggestionCount() > count;
  }, 30000, 100);
  record(explicit, "with automatic suggestions off, an explicit trigger still brings one", "none");
  await vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
  await vscode.commands.executeCommand("infill.toggleAutoSuggestions");
  await waitFor(() => cfg().get("enableAutoSuggestions") === before, 5000);

  // Completion items are off by default: the completion list has none from infill.
  const beforeList = api.requestCounts();
  const list = await vscode.commands.executeCommand("vscode.executeCompletionItemProvider", doc.uri, editor.selection.active);
  const ours = (list && list.items ? list.items : []).filter((i) => i.detail === "infill");
  const afterList = api.requestCounts();
  record(
    ours.length === 0 && afterList.completion > beforeList.completion && afterList.completionSent === beforeList.completionSent,
    "completion items are off by default: the completion list does not ask the server",
    JSON.stringify({ beforeList, afterList, ours: ours.map((i) => i.label) }),
  );

  // The driver looks at the window's status bar meanwhile.
  fs.appendFileSync(results, "CHECK_STATUSBAR\n");
  const looked = await waitFor(() => fs.existsSync(`${results}.statusbar`), 20000);
  record(!!looked, "the driver checked the status bar", "no answer");

  // Restart: a new server process that has the document again.
  const oldClient = api.client();
  await vscode.commands.executeCommand("infill.restartServer");
  const restarted = await waitFor(async () => {
    const c = api.client();
    if (!c || c === oldClient || !c.isRunning()) return undefined;
    const r = await c.sendRequest("infill/documentText", { uri });
    return r.text === doc.getText() && r;
  }, 30000);
  record(!!restarted, "the restart command starts a new server that has the document", "no");
}

exports.run = async function run() {
  try {
    await main();
  } catch (e) {
    record(false, "suite", e && e.stack ? e.stack : e);
  } finally {
    fs.appendFileSync(results, "DONE\n");
  }
  if (failed) throw new Error(`${failed} failed`);
};
