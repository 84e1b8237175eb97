// infill for VS Code: starts `infill serve` and lets vscode-languageclient
// register its inline completions (LSP 3.18 textDocument/inlineCompletion).
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  DidChangeConfigurationNotification,
  ShowMessageNotification,
  MessageType,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
  InlineCompletionTriggerKind,
  ExecuteCommandRequest,
} from "vscode-languageclient/node";

const SECTION = "infill";
// Settings the server takes, as `section.key` under `infill.`.
const SERVER_SETTINGS = [
  "engine.kind",
  "engine.url",
  "engine.model",
  "engine.apiKeyEnv",
  "engine.timeoutMs",
  "model.path",
  "model.preset",
  "model.threads",
  "model.contextSize",
  "model.keptPrompts",
  "model.gpuLayers",
  "model.fimTemplate",
  "completion.maxTokens",
  "completion.maxLines",
  "completion.promptTokens",
  "completion.loadWaitMs",
  "completion.multiline",
  "completion.timeBudgetMs",
  "completion.cursorLineAfterMiddle",
  "completion.anchoredLines",
  "completion.moveCachedTokens",
  "completion.secondTry",
  "completion.answerBlankLines",
  "completion.computeAhead",
  "completion.draftTokens",
  "completion.candidates",
  "completion.inCommentsAndStrings",
  "context.crossFile",
  "context.recency",
  "context.budgetTokens",
  "context.maxFileBytes",
  "context.maxIndexMegabytes",
  "context.layout",
  "stats.enabled",
];
// Changing one of these needs a new server process.
const RESTART_SETTINGS = ["serverPath", "languages", "trace.server"];

type ModelState = "starting" | "loading" | "ready" | "failed" | "none" | "stopped";

interface StatusResult {
  model: "loading" | "ready" | "failed" | "none";
  detail: string;
  modelAnswers?: number;
  reusedAnswers?: number;
  /** Today's suggestions shown and accepted, while statistics are recorded. */
  today?: { shown: number; accepted: number; acceptanceRate: number } | null;
}

/** The command the server puts on its items (`infill.accepted`), run on accept. */
const ACCEPTED = "infill.accepted";

/** The suggestion number on an item's `infill.accepted` command. */
function acceptedId(item: vscode.InlineCompletionItem): number | undefined {
  const id = item.command?.command === ACCEPTED ? item.command.arguments?.[0]?.id : undefined;
  return typeof id === "number" ? id : undefined;
}

/** How many UTF-16 units of `text` stand in `doc` from `start` on. */
function standing(doc: vscode.TextDocument, start: vscode.Position, text: string): number {
  const from = doc.offsetAt(start);
  const now = doc.getText(new vscode.Range(start, doc.positionAt(from + text.length)));
  let i = 0;
  while (i < now.length && i < text.length && now[i] === text[i]) i++;
  return i;
}

/**
 * Partial accepts (accept-word, accept-line), told from the document's
 * changes: VS Code runs an item's command only when all of it is accepted,
 * and tells a provider of a partial accept only through a proposed API
 * (`handleDidPartiallyAcceptCompletionItem`, refused to extensions installed
 * from a .vsix). A single change that puts two or more further chars of the
 * last suggestion in place, but not all of it, is reported as a part
 * accepted; one char at a time is typing (the server counts that itself).
 * Limits: a one-char word accepted counts as typed; pasting the
 * suggestion's start, or an auto-closed pair that matches it, counts as
 * accepted.
 */
class PartialAccepts {
  private last: { uri: string; start: vscode.Position; text: string; id: number; have: number } | undefined;

  constructor(private readonly report: (id: number, chars: number) => void) {}

  /** `item` was answered for `doc` at `position` (the version asked at). */
  answered(doc: vscode.TextDocument, position: vscode.Position, item: vscode.InlineCompletionItem | undefined): void {
    const id = item && acceptedId(item);
    const text = item && typeof item.insertText === "string" ? item.insertText : undefined;
    if (!item || id === undefined || !text) {
      this.last = undefined;
      return;
    }
    const start = item.range?.start ?? position;
    this.last = { uri: doc.uri.toString(), start, text, id, have: standing(doc, start, text) };
  }

  changed(e: vscode.TextDocumentChangeEvent): void {
    const s = this.last;
    if (!s || e.document.uri.toString() !== s.uri || e.contentChanges.length === 0) return;
    const change = e.contentChanges[0];
    if (e.contentChanges.length !== 1 || change.range.start.isBefore(s.start)) {
      this.last = undefined;
      return;
    }
    const have = standing(e.document, s.start, s.text);
    const grew = have - s.have;
    s.have = have;
    if (have >= s.text.length) {
      // All of it stands: a whole accept runs the item's command.
      this.last = undefined;
      return;
    }
    if (grew >= 2 && change.text.length >= grew) {
      // The server counts chars (code points); VS Code, UTF-16 units.
      this.report(s.id, [...s.text.slice(have - grew, have)].length);
    }
  }
}

/** The server's settings object: `{model: {...}, completion: {...}, context: {...}}`. */
export function serverSettings(cfg = vscode.workspace.getConfiguration(SECTION)): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const key of SERVER_SETTINGS) {
    const [section, name] = key.split(".");
    const value = cfg.get(key);
    if (value === undefined) continue;
    (out[section] ??= {})[name] = value;
  }
  return out;
}

class Infill {
  client: LanguageClient | undefined;
  readonly item: vscode.StatusBarItem;
  readonly output: vscode.LogOutputChannel;
  model: ModelState = "stopped";
  progress: string | undefined;
  error: string | undefined;
  /** The last suggestion the server gave, for the test and the status command. */
  lastSuggestion: { uri: string; text: string } | undefined;
  /** How many suggestions the server has given through this client. */
  suggestions = 0;
  /** Inline requests VS Code made (by trigger kind), and those sent to the server. */
  requests = { automatic: 0, invoked: 0, sent: 0, completion: 0, completionSent: 0 };
  private poll: NodeJS.Timeout | undefined;
  /** Partial accepts of the last suggestion, reported to the server. */
  readonly partial = new PartialAccepts((id, length) => {
    const client = this.client;
    if (!client?.isRunning()) return;
    this.partialAccepts++;
    void client
      .sendRequest(ExecuteCommandRequest.type, { command: ACCEPTED, arguments: [{ id, length }] })
      .catch(() => undefined);
  });
  /** Partial accepts reported (for the test). */
  partialAccepts = 0;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.item = vscode.window.createStatusBarItem("infill.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "infill";
    this.item.command = "infill.showStatus";
    this.output = vscode.window.createOutputChannel("infill", { log: true });
    context.subscriptions.push(
      this.item,
      this.output,
      vscode.workspace.onDidChangeTextDocument((e) => this.partial.changed(e)),
    );
    this.render();
    this.item.show();
  }

  autoSuggestions(): boolean {
    return vscode.workspace.getConfiguration(SECTION).get<boolean>("enableAutoSuggestions", true);
  }

  render(): void {
    const auto = this.autoSuggestions();
    let text: string;
    let tooltip: string;
    this.item.backgroundColor = undefined;
    if (this.error) {
      text = "$(error) infill";
      tooltip = `infill: ${this.error}`;
      this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
    } else if (this.progress) {
      text = `$(sync~spin) infill: ${this.progress}`;
      tooltip = `infill: ${this.progress}`;
    } else {
      switch (this.model) {
        case "starting":
          text = "$(sync~spin) infill";
          tooltip = "infill: starting the server";
          break;
        case "loading":
          text = "$(sync~spin) infill: loading model";
          tooltip = "infill: loading the model";
          break;
        case "ready":
          text = auto ? "$(sparkle) infill" : "$(circle-slash) infill";
          tooltip = auto ? "infill: ready" : "infill: ready; automatic suggestions are off";
          if (this.today && this.today.shown > 0) {
            text += ` ${Math.round(this.today.acceptanceRate * 100)}%`;
            tooltip += `\n${this.today.accepted} of ${this.today.shown} suggestions accepted today`;
          }
          break;
        case "none":
          text = "$(circle-slash) infill";
          tooltip = "infill: no model";
          break;
        case "failed":
          text = "$(error) infill";
          tooltip = "infill: the model failed to load";
          break;
        default:
          text = "$(debug-stop) infill";
          tooltip = "infill: the server is not running";
      }
    }
    this.item.text = text;
    this.item.tooltip = tooltip + "\nClick for details";
  }

  statusText(): string {
    return `${this.item.text} | ${this.item.tooltip ?? ""}`;
  }

  async start(): Promise<void> {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const command = cfg.get<string>("serverPath", "infill") || "infill";
    const languages = cfg.get<string[]>("languages", ["python", "java"]);
    // stdio, without `transport: stdio`, which would add a `--stdio` argument.
    const serverOptions: ServerOptions = { command, args: ["serve"] };
    const clientOptions: LanguageClientOptions = {
      documentSelector: languages.flatMap((language) => [
        { scheme: "file", language },
        { scheme: "untitled", language },
      ]),
      initializationOptions: serverSettings(cfg),
      outputChannel: this.output,
      middleware: {
        // VS Code shows the inline suggestions; a completion item for the same
        // answer would cost a second model request per keystroke (and cancel
        // the first), so completion items are off unless asked for.
        provideCompletionItem: (document, position, ctx, token, next) => {
          this.requests.completion++;
          if (!vscode.workspace.getConfiguration(SECTION).get<boolean>("completionItems", false)) {
            return undefined;
          }
          this.requests.completionSent++;
          return next(document, position, ctx, token);
        },
        provideInlineCompletionItems: async (document, position, ctx, token, next) => {
          const automatic = ctx.triggerKind === vscode.InlineCompletionTriggerKind.Automatic;
          this.requests[automatic ? "automatic" : "invoked"]++;
          if (automatic && !this.autoSuggestions()) {
            return null;
          }
          this.requests.sent++;
          const version = document.version;
          const result = await next(document, position, ctx, token);
          const items = Array.isArray(result) ? result : result?.items;
          const first = items?.[0];
          if (document.version === version && !token.isCancellationRequested) {
            this.partial.answered(document, position, first);
          }
          if (first) {
            this.suggestions++;
            const text = typeof first.insertText === "string" ? first.insertText : first.insertText.value;
            this.lastSuggestion = { uri: document.uri.toString(), text };
          }
          return result;
        },
      },
    };
    void InlineCompletionTriggerKind; // the protocol's kinds; VS Code's are used above
    this.error = undefined;
    this.model = "starting";
    this.render();
    const client = new LanguageClient("infill", "infill", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped && this.client === client) {
        this.model = "stopped";
        this.progress = undefined;
        this.render();
      }
    });
    try {
      await client.start();
    } catch (e) {
      this.error = `could not start \`${command} serve\`: ${e instanceof Error ? e.message : String(e)}`;
      this.model = "stopped";
      this.render();
      return;
    }
    // Errors from the server: shown as usual, and kept in the status bar.
    client.onNotification(ShowMessageNotification.type, (params) => {
      const message = params.message.replace(/^infill: /, "");
      switch (params.type) {
        case MessageType.Error:
          this.error = message;
          this.render();
          void vscode.window.showErrorMessage(params.message);
          break;
        case MessageType.Warning:
          void vscode.window.showWarningMessage(params.message);
          break;
        default:
          void vscode.window.showInformationMessage(params.message);
      }
      void this.refresh();
    });
    // Work-done progress (model load, indexing) goes to the status bar.
    client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      const sub = client.onProgress(WorkDoneProgress.type, token, (value) => {
        if (value.kind === "begin") {
          this.title = value.title.replace(/^infill: /, "");
          this.progress = this.title;
        } else if (value.kind === "report") {
          this.progress = [this.title, value.message, value.percentage !== undefined ? `${value.percentage}%` : ""]
            .filter(Boolean)
            .join(" ");
        } else {
          this.progress = undefined;
          sub.dispose();
          void this.refresh();
        }
        this.render();
      });
    });
    await this.refresh();
  }
  private title = "";
  /** Today's acceptance, from the last `infill/status`. */
  today?: { shown: number; accepted: number; acceptanceRate: number };

  /** Asks the server how the model is; polls while it loads. */
  async refresh(): Promise<StatusResult | undefined> {
    const client = this.client;
    if (!client || !client.isRunning()) return undefined;
    let status: StatusResult;
    try {
      status = await client.sendRequest<StatusResult>("infill/status", {});
    } catch {
      return undefined;
    }
    this.model = status.model;
    this.today = status.today ?? undefined;
    if (status.model === "failed") {
      this.error = status.detail || "the model failed to load";
    } else if (status.model === "ready" && this.error && !this.progress) {
      // a reload after a failed one went well
      this.error = undefined;
    }
    this.render();
    if (this.poll) clearTimeout(this.poll);
    if (status.model === "loading") {
      this.poll = setTimeout(() => void this.refresh(), 1000);
    } else {
      // Today's acceptance rate in the status bar stays current.
      this.poll = setTimeout(() => void this.refresh(), 30000);
    }
    return status;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (this.poll) clearTimeout(this.poll);
    if (client) {
      try {
        await client.stop(5000);
      } catch {
        // already gone
      }
    }
    this.model = "stopped";
    this.render();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async configurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!e.affectsConfiguration(SECTION)) return;
    if (RESTART_SETTINGS.some((k) => e.affectsConfiguration(`${SECTION}.${k}`))) {
      await this.restart();
      return;
    }
    this.render();
    if (SERVER_SETTINGS.some((k) => e.affectsConfiguration(`${SECTION}.${k}`)) && this.client?.isRunning()) {
      this.error = undefined;
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { [SECTION]: serverSettings() },
      });
      await this.refresh();
    }
  }
}

let infill: Infill | undefined;

export interface InfillApi {
  client(): LanguageClient | undefined;
  statusText(): string;
  lastSuggestion(): { uri: string; text: string } | undefined;
  suggestionCount(): number;
  requestCounts(): { automatic: number; invoked: number; sent: number; completion: number; completionSent: number };
  refresh(): Promise<StatusResult | undefined>;
  partialAccepts(): number;
}

export async function activate(context: vscode.ExtensionContext): Promise<InfillApi> {
  const it = new Infill(context);
  infill = it;
  context.subscriptions.push(
    vscode.commands.registerCommand("infill.restartServer", () => it.restart()),
    vscode.commands.registerCommand("infill.toggleAutoSuggestions", async () => {
      const cfg = vscode.workspace.getConfiguration(SECTION);
      const on = !cfg.get<boolean>("enableAutoSuggestions", true);
      await cfg.update("enableAutoSuggestions", on, vscode.ConfigurationTarget.Global);
      vscode.window.setStatusBarMessage(`infill: automatic suggestions ${on ? "on" : "off"}`, 3000);
      it.render();
    }),
    vscode.commands.registerCommand("infill.showStatus", async () => {
      const status = await it.refresh();
      const lines = [
        status ? `model: ${status.model}${status.detail ? ` (${status.detail})` : ""}` : "server not running",
        `automatic suggestions: ${it.autoSuggestions() ? "on" : "off"}`,
      ];
      if (it.error) lines.push(`error: ${it.error}`);
      const pick = await vscode.window.showInformationMessage(lines.join("; "), "Restart Server", "Show Log");
      if (pick === "Restart Server") await it.restart();
      if (pick === "Show Log") it.output.show();
    }),
    vscode.workspace.onDidChangeConfiguration((e) => it.configurationChanged(e)),
  );
  await it.start();
  return {
    client: () => it.client,
    statusText: () => it.statusText(),
    lastSuggestion: () => it.lastSuggestion,
    suggestionCount: () => it.suggestions,
    requestCounts: () => ({ ...it.requests }),
    refresh: () => it.refresh(),
    partialAccepts: () => it.partialAccepts,
  };
}

export async function deactivate(): Promise<void> {
  await infill?.stop();
}
