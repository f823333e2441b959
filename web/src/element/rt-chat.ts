/**
 * <rt-chat>: a room of rtserver in any page, with one lane per model.
 *
 * Attributes: server, room, token, name, models, theme (light | dark | auto), mode (launcher:
 * a floating button that opens the room in a panel) and open (the panel is open), and for special
 * cases transport (auto | websocket | sse), codec (msgpack | json), ping-interval and
 * ping-timeout (seconds) and history-page-size (messages). The element owns its
 * RtClient: it connects when it is in the document and has a room, and closes when it leaves.
 * Frames update a RoomState at once; the DOM follows at most once per animation frame. Its
 * layout follows its own width, not the window's: below two lanes' width, lanes become tabs.
 */

import { type ConnectionInfo, RtClient } from "../client/client.js";
import { EarlierMessages } from "../client/earlier.js";
import type {
  ErrorFrame,
  RoomEvent,
  StreamEndFrame,
  WelcomeFrame,
} from "../client/frames.js";
import { RoomState } from "../client/room-state.js";
import { type ChatSnapshot, ChatView } from "./chat-view.js";
import { listenTo } from "./client-listeners.js";
import type { SubmitHow } from "./composer.js";
import {
  CONNECTION_ATTRIBUTES,
  clientOptions,
  pageSize,
  tokenRole,
} from "./connection-attributes.js";
import { type RtChatEventDetails, rtEvent } from "./events.js";
import { parseModelList } from "./lanes.js";
import type { Ui } from "./layout.js";
import { LayoutWatch } from "./layout-watch.js";
import { LauncherState } from "./launcher-state.js";
import { PendingPrompts } from "./pending-prompts.js";
import { TypingSignal } from "./typing.js";
import { modelLabel, replyLabel } from "./views.js";
import { earlierLoadedText, errorText, streamEndedText } from "./wording.js";

export class RtChatElement extends HTMLElement {
  static readonly observedAttributes = [
    ...CONNECTION_ATTRIBUTES,
    "models",
    "history-page-size",
    "mode",
    "open",
  ];
  /** The server a `server`-less element talks to: where its script came from (set by define). */
  static defaultServer = "";

  readonly #shadow: ShadowRoot;
  #view: ChatView | null = null;
  #client: RtClient | null = null;
  #state = new RoomState();
  #earlier: EarlierMessages | null = null;
  /** Pages of earlier history loaded since the last snapshot. */
  #earlierPages = 0;
  #connection: ConnectionInfo = { state: "idle", transport: null, attempt: 0 };
  /** Set between connectedCallback and disconnectedCallback: the DOM listeners' lifetime. */
  #listeners: AbortController | null = null;
  #reconnecting = false;
  #stopListening: (() => void) | null = null;
  #layoutWatch: LayoutWatch | null = null;
  readonly #launcher = new LauncherState();

  readonly #prompts = new PendingPrompts();
  readonly #typing = new TypingSignal((typing) => this.#client?.typing(typing));

  constructor() {
    super();
    this.#shadow = this.attachShadow({ mode: "open", delegatesFocus: false });
  }

  // --- public API --------------------------------------------------------------------------

  /** The connection's state, as last reported. */
  get connection(): ConnectionInfo {
    return { ...this.#connection };
  }

  /** The room as this element knows it. */
  get roomState(): RoomState {
    return this.#state;
  }

  /** The model ids prompts go to: the `models` attribute, or none for the server's defaults. */
  get selectedModels(): string[] {
    return parseModelList(this.getAttribute("models"));
  }

  /** Whether the launcher's panel is open (the `open` attribute); opening it reads all. */
  get open(): boolean {
    return this.hasAttribute("open");
  }

  set open(open: boolean) {
    this.toggleAttribute("open", open);
  }

  /** In `mode="launcher"`: what came while the panel was closed (messages and replies). */
  get unread(): number {
    return this.#launcher.unread;
  }

  /** The lane a narrow element shows as its open tab, or null without lanes. */
  get selectedLane(): string | null {
    return this.#view?.selectedLane ?? null;
  }

  /** Shows `model`'s lane when the lanes are tabs; false when there is no such lane. */
  selectLane(model: string): boolean {
    return this.#view?.selectLane(model) ?? false;
  }

  /**
   * Sends a prompt to the selected models; returns its id, or null when it is empty. While
   * replies stream the server keeps it in the room's queue, shown to everyone, and runs it
   * when they end.
   */
  send(text: string): string | null {
    const prompt = text.trim();
    if (!prompt || !this.#client) return null;
    return this.#sent(this.#client.prompt(prompt, this.#modelsOption()), prompt);
  }

  /** Ends every running stream and, with text, sends it as the new prompt. */
  interrupt(text?: string): string | null {
    if (!this.#client) return null;
    const prompt = text?.trim();
    if (!prompt) {
      this.#client.interrupt();
      return null;
    }
    return this.#sent(this.#client.interrupt({ text: prompt, ...this.#modelsOption() }), prompt);
  }

  /**
   * Runs `model`'s reply to the user message `replyTo` again; the new reply shows in place of
   * the old one, which stays reachable. Waits in the room's queue while replies stream.
   */
  regenerate(model: string, replyTo: string): string | null {
    const id = this.#client?.regenerate(model, replyTo) ?? null;
    // A regenerate has no message of its own in the queue: say that it waits.
    if (id !== null && (this.#state.busy || this.#state.queue.length > 0)) {
      const label = modelLabel(model, this.#state.models);
      this.#view?.announce(`${label} will answer again when the replies before it end.`);
    }
    return id;
  }

  /** Takes this participant's own queued prompt (its user message id) out of the room's queue. */
  withdraw(message: string): string | null {
    return this.#client?.withdraw(message) ?? null;
  }

  /** Cancels one model's running stream. */
  cancel(model: string): void {
    const running = this.#state.running().filter((reply) => reply.lane === model);
    for (const reply of running) {
      if (reply.stream) this.#client?.cancel({ stream: reply.stream });
    }
  }

  /** Cancels every running stream in the room and clears the room's queue, for everyone. */
  cancelAll(): void {
    this.#client?.cancel();
  }

  /**
   * Loads the page of history before the oldest message shown and puts it above, keeping what
   * is on screen where it is. Resolves when it is shown (or has failed, which is shown too).
   */
  async loadEarlier(): Promise<void> {
    const earlier = this.#earlier;
    if (!earlier || earlier.loading) return;
    earlier.limit = pageSize(this.getAttribute("history-page-size"));
    const load = earlier.load();
    this.#view?.invalidate();
    const changes = await load;
    if (earlier !== this.#earlier) return;
    if (changes.length > 0) this.#earlierPages += 1;
    this.#view?.track(changes);
    this.#view?.invalidate();
    if (earlier.error === null)
      this.#view?.announce(earlierLoadedText(this.#state.earlier === "none"));
  }

  // --- lifecycle ---------------------------------------------------------------------------

  connectedCallback(): void {
    const view = (this.#view ??= new ChatView(this.#shadow, () => this.#snapshot()));
    this.#listeners?.abort();
    this.#listeners = new AbortController();
    this.#wire(view.ui, this.#listeners.signal);
    this.#launcher.setOpen(this.open);
    const { root, lanes, probe } = view.ui;
    this.#layoutWatch ??= new LayoutWatch({ root, lanes: lanes.element, probe }, (layout) =>
      view.setLayout(layout),
    );
    this.#layoutWatch.start();
    this.#reconnecting = false;
    this.#disconnect();
    this.#connect();
  }

  disconnectedCallback(): void {
    this.#listeners?.abort();
    this.#listeners = null;
    this.#reconnecting = false;
    this.#disconnect();
    this.#layoutWatch?.stop();
    this.#view?.cancel();
    this.#typing.dispose();
    this.#view?.ui.composer.dispose();
  }

  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void {
    // Before connectedCallback (an upgrade reports every attribute first) there is nothing to
    // change: connectedCallback connects with whatever the attributes are by then.
    if (oldValue === newValue || !this.#listeners) return;
    if (name === "open") this.#onOpenChanged();
    if (!CONNECTION_ATTRIBUTES.includes(name)) {
      this.#view?.invalidate();
      return;
    }
    // A host page often sets several attributes in a row: reconnect once, after all of them.
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    queueMicrotask(() => {
      if (!this.#reconnecting || !this.#listeners) return;
      this.#reconnecting = false;
      this.#disconnect();
      this.#connect();
    });
  }

  // --- connection --------------------------------------------------------------------------

  #connect(): void {
    this.#state = new RoomState();
    this.#earlier = null;
    this.#view?.reset();
    this.#prompts.clear();
    this.#launcher.clearUnread();
    const options = clientOptions((name) => this.getAttribute(name), RtChatElement.defaultServer);
    if (!options) {
      this.#connection = {
        state: "closed",
        transport: null,
        attempt: 0,
        reason: "no valid room attribute",
      };
      this.#view?.invalidate();
      return;
    }
    const client = new RtClient(options);
    this.#client = client;
    if (this.#view) this.#view.ui.conversation.canApprove = tokenRole(options.token) !== "viewer";
    this.#earlier = new EarlierMessages(this.#state, (query) => client.history(query));
    this.#stopListening = listenTo(client, {
      connection: (info) => this.#onConnection(info),
      welcome: (welcome) => this.#onWelcome(welcome),
      presence: (participants) => this.#onPresence(this.#state.applyPresence(participants)),
      presenceDiff: (diff) => this.#onPresence(this.#state.applyPresenceDiff(diff)),
      error: (frame) => this.#onError(frame),
      roomEvent: (event) => this.#onEvent(event),
    });
    client.connect();
  }

  #disconnect(): void {
    this.#stopListening?.();
    this.#stopListening = null;
    this.#client?.close();
    this.#client = null;
  }

  // --- frames ------------------------------------------------------------------------------

  #onConnection(info: ConnectionInfo): void {
    this.#connection = info;
    this.#dispatch("rt-connection", info);
    this.#view?.invalidate();
  }

  #onWelcome(welcome: WelcomeFrame): void {
    this.#view?.track(this.#state.applyWelcome(welcome));
    if (!welcome.resumed) {
      this.#earlierPages = 0;
      void this.#checkEarlier();
    }
    this.#prompts.seenIn([...this.#state.turns, ...this.#state.queue]);
    this.#dispatch("rt-ready", welcome);
    // Labels and colours come with the models, so lane heads are drawn again too.
    this.#view?.invalidate({ people: true, lanes: true });
  }

  /** After the state took a presence frame in (the changes only say "presence"). */
  #onPresence(_changes: readonly unknown[]): void {
    const { participants, participantCount } = this.#state;
    this.#dispatch("rt-presence", { participants, count: participantCount });
    this.#view?.invalidate({ people: true });
  }

  #onError(frame: ErrorFrame): void {
    const refused = this.#prompts.refused(frame.ref);
    if (refused !== null) this.#view?.ui.composer.restore(refused);
    this.#view?.ui.composer.showAlert(errorText(frame));
    this.#dispatch("rt-error", frame);
    this.#view?.invalidate();
  }

  #onEvent(event: RoomEvent): void {
    this.#view?.track(this.#state.apply(event));
    switch (event.type) {
      case "message":
        this.#launcher.noteArrival(event.author?.id === this.#state.me?.id);
        this.#prompts.echoed(event.prompt_id);
        this.#dispatch("rt-message", event);
        break;
      case "stream_start":
        this.#launcher.noteArrival(false);
        this.#view?.announce(`${this.#answererLabel(event.stream)} started answering.`);
        this.#dispatch("rt-stream-start", event);
        break;
      case "model_switch":
        this.#view?.announce(`${this.#answererLabel(event.stream)} took over: ${event.reason}.`);
        this.#dispatch("rt-model-switch", event);
        break;
      case "stream_end":
        this.#onStreamEnd(event);
        break;
      case "unqueued":
        break;
      default:
        // Tokens change a reply, not the chrome around it.
        return;
    }
    this.#view?.invalidate();
  }

  /** Who answers a stream, as a lane head names it ("Auto → Fast" when routed). */
  #answererLabel(stream: string): string {
    const reply = this.#state.replyOfStream(stream);
    return reply ? replyLabel(reply, this.#state.models) : "A model";
  }

  #onStreamEnd(event: StreamEndFrame): void {
    const reply = this.#state.replyOfStream(event.stream);
    const model = reply?.model ?? "";
    this.#view?.announce(streamEndedText(modelLabel(model, this.#state.models), event));
    this.#dispatch("rt-stream-end", { ...event, model, text: reply?.text ?? "" });
  }

  // --- launcher ----------------------------------------------------------------------------

  #onOpenChanged(): void {
    if (!this.#launcher.setOpen(this.open)) return;
    const ui = this.#view?.ui;
    // Closed by the page while the keyboard was inside: it goes back to the button.
    if (!this.open && this.#launcherMode && ui?.launcher.hasFocus()) {
      this.#view?.drawNow();
      ui.launcher.button.focus();
    }
    this.#dispatch("rt-toggle", { open: this.open });
  }

  get #launcherMode(): boolean {
    return this.getAttribute("mode") === "launcher";
  }

  /** The person opened or closed the panel: the keyboard goes with what they opened. */
  #toggleByUser(open: boolean): void {
    this.open = open;
    const view = this.#view;
    if (!view) return;
    view.drawNow();
    if (open) view.ui.composer.focus();
    else view.ui.launcher.button.focus();
  }

  /** Finds out whether to offer earlier messages at all: a room may start in the snapshot. */
  async #checkEarlier(): Promise<void> {
    const earlier = this.#earlier;
    if (!earlier) return;
    await earlier.check();
    if (earlier === this.#earlier) this.#view?.invalidate();
  }

  // --- prompts -----------------------------------------------------------------------------

  #modelsOption(): { models?: string[] } {
    const models = this.selectedModels;
    return models.length > 0 ? { models } : {};
  }

  #sent(id: string, text: string): string {
    this.#prompts.sent(id, text);
    this.#typing.stop();
    this.#view?.invalidate();
    return id;
  }

  get #busy(): boolean {
    return this.#state.busy || this.#prompts.awaiting;
  }

  /** The composer's Send, Enter, Ctrl+Enter; true when the prompt was sent. */
  #submit(text: string, how: SubmitHow): boolean {
    const sent = how === "interrupt" && this.#busy ? this.interrupt(text) : this.send(text);
    return sent !== null;
  }

  // --- view --------------------------------------------------------------------------------

  /** What the view draws from, read when it draws. */
  #snapshot(): ChatSnapshot {
    const earlier = this.#earlier;
    return {
      state: this.#state,
      connection: this.#connection,
      room: this.getAttribute("room") ?? "",
      selectedModels: this.selectedModels,
      busy: this.#busy,
      earlierLoading: earlier?.loading ?? false,
      earlierError: earlier?.error ?? null,
      earlierLoadedAny: this.#earlierPages > 0,
      launcher: {
        enabled: this.#launcherMode,
        open: this.#launcher.open,
        unread: this.#launcher.unread,
      },
    };
  }

  // --- DOM listeners -----------------------------------------------------------------------

  #wire(ui: Ui, signal: AbortSignal): void {
    ui.composer.wire(signal, this.#shadow, {
      submit: (text, how) => this.#submit(text, how),
      typed: (text) => this.#typing.typed(text),
      stopAll: () => this.cancelAll(),
      streaming: () => this.#state.busy,
    });
    ui.earlier.button.addEventListener("click", () => void this.loadEarlier(), { signal });
    ui.queue.wire(signal, { withdraw: (message) => this.withdraw(message) });
    ui.conversation.wire(signal, {
      regenerate: (model, replyTo) => this.regenerate(model, replyTo),
      changed: () => this.#view?.invalidate(),
    });
    ui.lanes.wire(signal, {
      cancel: (model) => this.cancel(model),
      select: (model) => this.selectLane(model),
    });
    ui.launcher.wire(signal, { toggle: (open) => this.#toggleByUser(open) });
    ui.scroll.wire(signal);
    ui.log.addEventListener("click", (event) => this.#onToolButton(event), { signal });
    // Back online: reconnect now rather than when the backoff timer says.
    window.addEventListener("online", () => this.#client?.reconnectNow(), { signal });
  }

  /** An Approve or Deny button of a tool call waiting for approval. */
  #onToolButton(event: Event): void {
    const button = event.target instanceof Element ? event.target.closest("button") : null;
    const action = button?.dataset["action"];
    const call = button?.dataset["call"];
    if (!call || (action !== "approve" && action !== "deny")) return;
    this.#client?.approve(call, action === "approve");
  }

  #dispatch<K extends keyof RtChatEventDetails>(type: K, detail: RtChatEventDetails[K]): void {
    this.dispatchEvent(rtEvent(type, detail));
  }
}
