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

// The statistics store the server writes (the server inherits
// XDG_STATE_HOME): its events, decoded, and the first checkpoint (seconds).
const storeFile = path.join(process.env.XDG_STATE_HOME || "/nonexistent", "infill", "events.jsonl");
const firstCheckpoint = Number((process.env.INFILL_STATS_CHECKPOINTS || "").split(",")[0]) || undefined;
function events() {
  let text = "";
  try {
    text = fs.readFileSync(storeFile, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return null;
      }
    })
    .filter(Boolean);
}
const since = (mark, kind) => events().slice(mark).filter((e) => e.kind === kind && e.language === "python");
const chars = (s) => [...s].length;

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
  let mark = events().length;
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
    // At once (before the first checkpoint): the accepted text's last k
    // chars deleted; the checkpoint then records 1 - k / its length.
    const start = new vscode.Position(4, typed.length);
    const end = doc.positionAt(doc.offsetAt(start) + (sug ? sug.text.length : 0));
    const lastLine = sug ? sug.text.split("\n").pop() : "";
    const k = Math.min(3, lastLine.length - 1);
    let edited = false;
    if (sug && doc.getText(new vscode.Range(start, end)) === sug.text && k >= 1 && /^[\x20-\x7e]*$/.test(lastLine)) {
      edited = await editor.edit((e) => e.delete(new vscode.Range(end.translate(0, -k), end)));
    }
    record(sug && line === typed + sug.text.split("\n")[0], "the document holds the suggestion", JSON.stringify({ line, sug }));
    const after = await waitFor(async () => {
      const r = await client.sendRequest("infill/documentText", { uri });
      return r.text === doc.getText() && r;
    }, 5000);
    record(!!after, "the server's copy matches after the commit", "differs");
    const accepted = await waitFor(() => {
      const a = since(mark, "accepted");
      return a.length > 0 && a;
    }, 5000);
    record(
      accepted && accepted.length === 1 && !accepted[0].partial && accepted[0].acceptedChars === chars(sug.text),
      "the store records the commit as an accept of all " + (sug ? chars(sug.text) : "?") + " chars",
      JSON.stringify({ accepted, storeFile }),
    );
    if (record(edited && accepted && firstCheckpoint, "the accepted text's end is deleted", JSON.stringify({ sug, k, firstCheckpoint }))) {
      const n = accepted[0].n;
      const p = await waitFor(
        () => since(mark, "persisted").find((e) => e.n === n && e.session === accepted[0].session && e.checkpointSecs === firstCheckpoint),
        (firstCheckpoint + 5) * 1000,
      );
      const expect = 1 - k / chars(sug.text);
      record(
        p && Math.abs(p.similarity - expect) < 1e-9 && p.deleted === false && p.early === undefined,
        `the ${firstCheckpoint} s checkpoint after deleting ${k} of ${chars(sug.text)} chars records similarity ${expect.toFixed(4)}`,
        JSON.stringify(p || since(mark, "persisted")),
      );
    }
  }

  // Accept-word (editor.action.inlineSuggest.acceptNextWord) in a new
  // function at the end: the store records the word's length as a partial accept,
  // then committing the rest records the rest.
  {
    // A second recursive function: the model answers the other call, of
    // which accept-word takes the name.
    const last = doc.lineCount - 1;
    await editor.edit((e) => e.insert(doc.lineAt(last).range.end, "\n\n\ndef fib2(n):\n    if n < 2:\n        return n\n"));
    const row = doc.lineCount - 1;
    editor.selection = new vscode.Selection(row, 0, row, 0);
    for (const ch of "    return fib2(n - 1) + ") {
      await vscode.commands.executeCommand("type", { text: ch });
    }
    const before = doc.lineAt(row).text;
    mark = events().length;
    let word;
    const until = Date.now() + 90000;
    while (!word && Date.now() < until) {
      const count = api.suggestionCount();
      await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
      const sug = await waitFor(() => api.suggestionCount() > count && api.lastSuggestion(), 5000);
      await sleep(500);
      await vscode.commands.executeCommand("editor.action.inlineSuggest.acceptNextWord");
      await sleep(300);
      const now = doc.lineAt(row).text;
      if (now !== before) word = { sug, part: now.slice(before.length) };
    }
    if (record(!!word, "accept-word inserts a part of a suggestion", "the line never changed")) {
      const { sug, part } = word;
      record(
        sug && sug.text.startsWith(part) && part.length >= 2 && part.length < sug.text.length,
        `accept-word inserts the suggestion's first word (${JSON.stringify(part)} of ${JSON.stringify(sug && sug.text)})`,
        "a one-char part is not told from typing",
      );
      const partial = await waitFor(() => {
        const a = since(mark, "accepted");
        return a.length > 0 && a;
      }, 5000);
      record(
        partial && partial.length === 1 && partial[0].partial === true && partial[0].acceptedChars === chars(part),
        `the store records accept-word as a partial accept of ${chars(part)} chars`,
        JSON.stringify({ partial, reported: api.partialAccepts() }),
      );
      // The rest stays shown; committing it records the rest.
      let rest = doc.lineAt(row).text;
      for (let i = 0; i < 5 && rest === before + part; i++) {
        if (i > 0) await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
        await sleep(500);
        await vscode.commands.executeCommand("editor.action.inlineSuggest.commit");
        await sleep(300);
        rest = doc.lineAt(row).text;
      }
      const restText = rest.slice((before + part).length);
      const whole = await waitFor(() => {
        const a = since(mark, "accepted");
        return a.length > 1 && a;
      }, 5000);
      record(
        sug && restText.length > 0 && sug.text.startsWith(part + restText) && whole && whole.length === 2 &&
          whole[1].partial === false && whole[1].acceptedChars === chars(restText) && whole[1].n === whole[0].n,
        `committing the rest records an accept of the other ${chars(restText)} chars of the same suggestion`,
        JSON.stringify({ rest: restText, whole }),
      );
    }
  }

  // The status bar shows today's acceptance rate.
  const st = await api.refresh();
  const today = st && st.today;
  const rate = today && today.shown > 0 ? `infill ${Math.round(today.acceptanceRate * 100)}%` : undefined;
  record(
    rate && today.accepted > 0 && api.statusText().includes(rate),
    `the status bar shows today's acceptance rate (${rate})`,
    JSON.stringify({ today, status: api.statusText() }),
  );

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
