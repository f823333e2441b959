/**
 * <rt-chat>: a room of rtserver in any page, with one lane per model.
 *
 * Attributes: server, room, token, name, models, theme (light | dark | auto), and for special
 * cases transport (auto | websocket | sse), codec (msgpack | json), ping-interval and
 * ping-timeout (seconds) and history-page-size (messages). The element owns its
 * RtClient: it connects when it is in the document and has a room, and closes when it leaves.
 * Frames update a RoomState at once; the DOM follows at most once per animation frame.
 */

import { type ConnectionInfo, RtClient } from "../client/client.js";
import { EarlierMessages } from "../client/earlier.js";
import type { ErrorFrame, PresenceEntry, RoomEvent, WelcomeFrame } from "../client/frames.js";
import { type Change, RoomState } from "../client/room-state.js";
import { Announcer } from "./announcer.js";
import { CONNECTION_ATTRIBUTES, clientOptions, pageSize } from "./connection-attributes.js";
import { Conversation } from "./conversation.js";
import { EarlierView } from "./earlier-view.js";
import { type RtChatEventDetails, rtEvent } from "./events.js";
import { FrameScheduler } from "./frame-scheduler.js";
import { LaneHeads } from "./lane-heads.js";
import { parseModelList } from "./lanes.js";
import { LogScroll } from "./log-scroll.js";
import { StatusBar } from "./status-bar.js";
import { STYLES } from "./styles.js";
import { el, modelLabel } from "./views.js";
import { earlierLoadedText, errorText, streamEndedText } from "./wording.js";

/** A participant who stops typing for this long is shown as not typing any more. */
const TYPING_IDLE_MS = 3000;
/** How long a refused action's message stays up. */
const ALERT_MS = 8000;

interface Ui {
  root: HTMLElement;
  bar: StatusBar;
  log: HTMLElement;
  lanes: LaneHeads;
  earlier: EarlierView;
  turns: HTMLElement;
  empty: HTMLElement;
  conversation: Conversation;
  scroll: LogScroll;
  announcer: Announcer;
  form: HTMLFormElement;
  input: HTMLTextAreaElement;
  send: HTMLButtonElement;
  interrupt: HTMLButtonElement;
  stopAll: HTMLButtonElement;
  hint: HTMLElement;
  queued: HTMLElement;
  queuedText: HTMLElement;
  alert: HTMLElement;
}

export class RtChatElement extends HTMLElement {
  static readonly observedAttributes = [...CONNECTION_ATTRIBUTES, "models", "history-page-size"];
  /** The server a `server`-less element talks to: where its script came from (set by define). */
  static defaultServer = "";

  readonly #shadow: ShadowRoot;
  #ui: Ui | null = null;
  #client: RtClient | null = null;
  #state = new RoomState();
  #earlier: EarlierMessages | null = null;
  /** Pages of earlier history loaded since the last snapshot. */
  #earlierPages = 0;
  #connection: ConnectionInfo = { state: "idle", transport: null, attempt: 0 };
  /** Set between connectedCallback and disconnectedCallback: the DOM listeners' lifetime. */
  #listeners: AbortController | null = null;
  #reconnecting = false;
  #offClient: (() => void)[] = [];

  readonly #frames = new FrameScheduler(() => this.#render());
  #chromePending = true;
  #lanesPending = true;
  #peoplePending = true;

  /** A prompt typed while replies stream, sent when they end. */
  #queuedPrompt: string | null = null;
  /** Our prompt that the server has neither echoed nor refused yet, and its text. */
  #inflight: string | null = null;
  #inflightText = "";
  #typing = false;
  #typingTimer: ReturnType<typeof setTimeout> | null = null;
  #alertTimer: ReturnType<typeof setTimeout> | null = null;

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

  /**
   * Sends a prompt to the selected models. While replies stream it is queued instead and sent
   * when they end; returns the prompt id, or null when it was queued or empty.
   */
  send(text: string): string | null {
    const prompt = text.trim();
    if (!prompt || !this.#client) return null;
    if (this.#busy) {
      this.#queuedPrompt = prompt;
      this.#invalidateChrome();
      return null;
    }
    const models = this.selectedModels;
    this.#inflight = this.#client.prompt(prompt, models.length > 0 ? { models } : {});
    this.#inflightText = prompt;
    this.#stopTyping();
    this.#invalidateChrome();
    return this.#inflight;
  }

  /** Ends every running stream and, with text, sends it as the new prompt. */
  interrupt(text?: string): string | null {
    if (!this.#client) return null;
    const prompt = text?.trim();
    const models = this.selectedModels;
    if (!prompt) {
      this.#client.interrupt();
      return null;
    }
    this.#queuedPrompt = null;
    this.#inflight = this.#client.interrupt({
      text: prompt,
      ...(models.length > 0 ? { models } : {}),
    });
    this.#inflightText = prompt;
    this.#stopTyping();
    this.#invalidateChrome();
    return this.#inflight;
  }

  /** Cancels one model's running stream. */
  cancel(model: string): void {
    const running = this.#state.running().filter((reply) => reply.model === model);
    for (const reply of running) {
      if (reply.stream) this.#client?.cancel({ stream: reply.stream });
    }
  }

  /**
   * Cancels every running stream in the room. A queued prompt stays queued, so it goes out as
   * soon as the streams have ended: "stop those, go on with mine". It has its own Discard.
   */
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
    this.#invalidateChrome();
    const changes = await load;
    if (earlier !== this.#earlier) return;
    if (changes.length > 0) this.#earlierPages += 1;
    this.#track(changes);
    this.#invalidateChrome();
    if (earlier.error === null) {
      this.#announce(earlierLoadedText(this.#state.earlier === "none"));
    }
  }

  // --- lifecycle ---------------------------------------------------------------------------

  connectedCallback(): void {
    if (!this.#ui) this.#ui = this.#build();
    this.#listeners?.abort();
    this.#listeners = new AbortController();
    this.#wireUi(this.#ui, this.#listeners.signal);
    this.#reconnecting = false;
    this.#disconnect();
    this.#connect();
  }

  disconnectedCallback(): void {
    this.#listeners?.abort();
    this.#listeners = null;
    this.#reconnecting = false;
    this.#disconnect();
    this.#frames.cancel();
    for (const timer of [this.#typingTimer, this.#alertTimer]) if (timer) clearTimeout(timer);
    this.#typingTimer = this.#alertTimer = null;
  }

  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void {
    // Before connectedCallback (an upgrade reports every attribute first) there is nothing to
    // change: connectedCallback connects with whatever the attributes are by then.
    if (oldValue === newValue || !this.#listeners) return;
    if (!CONNECTION_ATTRIBUTES.includes(name)) {
      this.#invalidateChrome();
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

  #connect(): void {
    this.#state = new RoomState();
    this.#earlier = null;
    this.#ui?.conversation.reset();
    this.#queuedPrompt = this.#inflight = null;
    const options = clientOptions((name) => this.getAttribute(name), RtChatElement.defaultServer);
    if (!options) {
      this.#connection = {
        state: "closed",
        transport: null,
        attempt: 0,
        reason: "no valid room attribute",
      };
      this.#invalidateChrome();
      return;
    }
    const client = new RtClient(options);
    this.#client = client;
    this.#earlier = new EarlierMessages(this.#state, (query) => client.history(query));
    this.#offClient = [
      client.on("state", (info) => this.#onConnection(info)),
      client.on("welcome", (welcome) => this.#onWelcome(welcome)),
      client.on("presence", (frame) => this.#onPresence(frame.participants)),
      client.on("error", (frame) => this.#onError(frame)),
      client.on("message", (event) => this.#onEvent(event)),
      client.on("stream_start", (event) => this.#onEvent(event)),
      client.on("token", (event) => this.#onEvent(event)),
      client.on("tool_call", (event) => this.#onEvent(event)),
      client.on("stream_end", (event) => this.#onEvent(event)),
    ];
    client.connect();
  }

  #disconnect(): void {
    for (const off of this.#offClient) off();
    this.#offClient = [];
    this.#client?.close();
    this.#client = null;
  }

  // --- frames ------------------------------------------------------------------------------

  #onConnection(info: ConnectionInfo): void {
    this.#connection = info;
    this.#dispatch("rt-connection", info);
    this.#invalidateChrome();
  }

  #onWelcome(welcome: WelcomeFrame): void {
    this.#track(this.#state.applyWelcome(welcome));
    if (!welcome.resumed) {
      this.#earlierPages = 0;
      void this.#checkEarlier();
    }
    // A snapshot may already hold our prompt: the server took it before the connection dropped.
    if (
      this.#state.turns.some((turn) => turn.promptId !== null && turn.promptId === this.#inflight)
    ) {
      this.#inflight = null;
    }
    this.#sendQueuedWhenIdle();
    // Labels and colours come with the models, so lane heads are drawn again too.
    this.#peoplePending = this.#lanesPending = true;
    this.#dispatch("rt-ready", welcome);
    this.#invalidateChrome();
  }

  #onPresence(participants: PresenceEntry[]): void {
    this.#state.applyPresence(participants);
    this.#peoplePending = true;
    this.#dispatch("rt-presence", { participants });
    this.#invalidateChrome();
  }

  #onError(frame: ErrorFrame): void {
    if (frame.ref && frame.ref === this.#inflight) {
      this.#inflight = null;
      const ui = this.#ui;
      // Give the refused prompt back rather than lose what was typed.
      if (ui && !ui.input.value) ui.input.value = this.#inflightText;
    }
    this.#showAlert(errorText(frame));
    this.#dispatch("rt-error", frame);
    this.#invalidateChrome();
  }

  #onEvent(event: RoomEvent): void {
    this.#track(this.#state.apply(event));
    switch (event.type) {
      case "message":
        if (event.prompt_id === this.#inflight) this.#inflight = null;
        this.#dispatch("rt-message", event);
        break;
      case "stream_start":
        this.#announce(`${modelLabel(event.model, this.#state.models)} started answering.`);
        this.#dispatch("rt-stream-start", event);
        break;
      case "stream_end": {
        const reply = this.#state.replyOfStream(event.stream);
        const model = reply?.model ?? "";
        this.#announce(streamEndedText(modelLabel(model, this.#state.models), event));
        this.#dispatch("rt-stream-end", { ...event, model, text: reply?.text ?? "" });
        this.#sendQueuedWhenIdle();
        break;
      }
      default:
        // Tokens change a reply, not the chrome around it.
        return;
    }
    this.#invalidateChrome();
  }

  /** Finds out whether to offer earlier messages at all: a room may start in the snapshot. */
  async #checkEarlier(): Promise<void> {
    const earlier = this.#earlier;
    if (!earlier) return;
    await earlier.check();
    if (earlier === this.#earlier) this.#invalidateChrome();
  }

  #sendQueuedWhenIdle(): void {
    if (this.#busy || this.#queuedPrompt === null) return;
    const text = this.#queuedPrompt;
    this.#queuedPrompt = null;
    this.send(text);
  }

  get #busy(): boolean {
    return this.#state.busy || this.#inflight !== null;
  }

  // --- rendering ---------------------------------------------------------------------------

  #track(changes: Change[]): void {
    this.#ui?.conversation.track(changes);
    this.#schedule();
  }

  #invalidateChrome(): void {
    this.#chromePending = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.isConnected) this.#frames.request();
  }

  #render(): void {
    const ui = this.#ui;
    if (!ui) return;
    const drawn = ui.conversation.draw(this.#state, this.selectedModels);
    if (drawn.reset) this.#chromePending = true;
    if (drawn.lanesChanged) this.#lanesPending = this.#chromePending = true;
    if (this.#chromePending) {
      this.#chromePending = false;
      this.#renderChrome(ui);
    }
    if (drawn.anchor) ui.scroll.keepInPlace(drawn.anchor);
    ui.scroll.follow();
    ui.announcer.flush();
  }

  #renderChrome(ui: Ui): void {
    const running = this.#state.running();
    const info = this.#connection;
    ui.bar.renderConnection(info, this.getAttribute("room") ?? "");
    ui.root.style.setProperty("--lanes", String(Math.max(1, ui.conversation.lanes.length)));

    if (this.#peoplePending) {
      this.#peoplePending = false;
      ui.bar.renderPeople(this.#state.participants, this.#state.me?.id);
    }
    if (this.#lanesPending) {
      this.#lanesPending = false;
      ui.lanes.render(ui.conversation.lanes, this.#state.models);
    }
    ui.lanes.showStreaming(running);
    ui.empty.hidden = this.#state.turns.length > 0;
    const earlier = this.#earlier;
    const hadFocus = this.#shadow.activeElement === ui.earlier.button;
    ui.earlier.render({
      status: this.#state.earlier,
      loading: earlier?.loading ?? false,
      error: earlier?.error ?? null,
      loadedAny: this.#earlierPages > 0,
      hasTurns: this.#state.turns.length > 0,
    });
    ui.log.setAttribute("aria-busy", String(earlier?.loading ?? false));
    // The button goes once the start is shown; the keyboard focus goes to the conversation.
    if (hadFocus && ui.earlier.button.hidden) ui.log.focus({ preventScroll: true });

    const busy = this.#busy;
    const open = info.state === "open";
    ui.send.textContent = busy ? "Queue" : "Send";
    ui.send.setAttribute(
      "aria-label",
      busy ? "Queue this prompt until the replies finish" : "Send",
    );
    ui.interrupt.hidden = !busy;
    ui.stopAll.hidden = !busy;
    ui.stopAll.disabled = running.length === 0;
    ui.hint.textContent = busy
      ? "Replies are streaming. Enter queues your prompt, Ctrl+Enter interrupts and sends it now, " +
        "Esc stops all."
      : open
        ? "Enter sends, Shift+Enter adds a new line."
        : "Not connected: a prompt you send now goes out when the connection is back.";
    ui.queued.hidden = this.#queuedPrompt === null;
    ui.queuedText.textContent = this.#queuedPrompt ?? "";
  }

  // --- UI ----------------------------------------------------------------------------------

  #build(): Ui {
    const doc = this.ownerDocument;
    const style = el(doc, "style", undefined, STYLES);
    const root = el(doc, "div", "root");
    root.setAttribute("part", "root");

    const bar = new StatusBar(doc);

    const log = el(doc, "div", "log");
    log.setAttribute("part", "log");
    log.tabIndex = 0;
    log.setAttribute("role", "region");
    log.setAttribute("aria-label", "Conversation");
    const lanes = new LaneHeads(doc);
    const empty = el(
      doc,
      "p",
      "empty",
      "No messages yet. Ask something and watch the models answer side by side.",
    );
    const turns = el(doc, "div", "turns");
    turns.id = "rt-turns";
    const earlier = new EarlierView(doc, turns.id);
    log.append(lanes.element, earlier.element, empty, turns);

    const conversation = new Conversation(turns);
    const scroll = new LogScroll(log);

    const announcer = new Announcer(doc);

    const form = el(doc, "form", "composer");
    form.setAttribute("part", "composer");
    const label = el(doc, "label", "sr-only", "Message");
    label.htmlFor = "rt-input";
    const input = el(doc, "textarea");
    input.id = "rt-input";
    input.rows = 2;
    input.placeholder = "Ask the models…";
    input.setAttribute("aria-describedby", "rt-hint");
    const send = el(doc, "button", "primary", "Send");
    send.type = "submit";
    const interrupt = el(doc, "button", undefined, "Interrupt & send");
    interrupt.type = "button";
    interrupt.hidden = true;
    const stopAll = el(doc, "button", "danger", "Stop all");
    stopAll.type = "button";
    stopAll.hidden = true;
    const actions = el(doc, "div", "actions");
    actions.append(send, interrupt, stopAll);
    const row = el(doc, "div", "composer-row");
    row.append(input, actions);
    const hint = el(doc, "p", "hint");
    hint.id = "rt-hint";
    const queued = el(doc, "div", "queued");
    queued.hidden = true;
    const queuedText = el(doc, "q");
    const discard = el(doc, "button", undefined, "Discard");
    discard.type = "button";
    discard.dataset["action"] = "discard";
    discard.setAttribute("aria-label", "Discard the queued prompt");
    queued.append(el(doc, "span", undefined, "Queued:"), queuedText, discard);
    const alert = el(doc, "p", "alert");
    alert.setAttribute("role", "alert");
    form.append(label, row, hint, queued, alert);

    root.append(bar.element, log, scroll.jump, form, announcer.element);
    this.#shadow.replaceChildren(style, root);
    return {
      root,
      bar,
      log,
      lanes,
      earlier,
      turns,
      empty,
      conversation,
      scroll,
      announcer,
      form,
      input,
      send,
      interrupt,
      stopAll,
      hint,
      queued,
      queuedText,
      alert,
    };
  }

  #wireUi(ui: Ui, signal: AbortSignal): void {
    ui.form.addEventListener(
      "submit",
      (event) => {
        event.preventDefault();
        this.#submit(ui, "send");
      },
      { signal },
    );
    ui.input.addEventListener(
      "keydown",
      (event) => {
        if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
        event.preventDefault();
        this.#submit(ui, event.ctrlKey || event.metaKey ? "interrupt" : "send");
      },
      { signal },
    );
    ui.input.addEventListener("input", () => this.#noteTyping(ui), { signal });
    this.#shadow.addEventListener(
      "keydown",
      (event) => {
        if (!(event instanceof KeyboardEvent) || event.key !== "Escape" || !this.#state.busy)
          return;
        event.preventDefault();
        this.cancelAll();
      },
      { signal },
    );
    ui.interrupt.addEventListener("click", () => this.#submit(ui, "interrupt"), { signal });
    ui.earlier.button.addEventListener("click", () => void this.loadEarlier(), { signal });
    ui.stopAll.addEventListener("click", () => this.cancelAll(), { signal });
    ui.lanes.wire(signal, (model) => this.cancel(model));
    ui.queued.addEventListener(
      "click",
      (event) => {
        if (
          event.target instanceof HTMLButtonElement &&
          event.target.dataset["action"] === "discard"
        ) {
          this.#queuedPrompt = null;
          this.#invalidateChrome();
        }
      },
      { signal },
    );
    ui.scroll.wire(signal);
    // Back online: reconnect now rather than when the backoff timer says.
    window.addEventListener("online", () => this.#client?.reconnectNow(), { signal });
  }

  #submit(ui: Ui, how: "send" | "interrupt"): void {
    const text = ui.input.value;
    if (!text.trim()) return;
    const sent = how === "interrupt" && this.#busy ? this.interrupt(text) : this.send(text);
    if (sent !== null || this.#queuedPrompt !== null) ui.input.value = "";
    ui.input.focus();
  }

  #noteTyping(ui: Ui): void {
    if (!ui.input.value.trim()) {
      this.#stopTyping();
      return;
    }
    if (!this.#typing) {
      this.#typing = true;
      this.#client?.typing(true);
    }
    if (this.#typingTimer) clearTimeout(this.#typingTimer);
    this.#typingTimer = setTimeout(() => this.#stopTyping(), TYPING_IDLE_MS);
  }

  #stopTyping(): void {
    if (this.#typingTimer) clearTimeout(this.#typingTimer);
    this.#typingTimer = null;
    if (!this.#typing) return;
    this.#typing = false;
    this.#client?.typing(false);
  }

  /** Queues words for the live region; those of one frame are said together, once. */
  #announce(text: string): void {
    this.#ui?.announcer.say(text);
    this.#schedule();
  }

  #showAlert(text: string): void {
    const ui = this.#ui;
    if (!ui) return;
    ui.alert.textContent = text;
    if (this.#alertTimer) clearTimeout(this.#alertTimer);
    this.#alertTimer = setTimeout(() => {
      ui.alert.textContent = "";
    }, ALERT_MS);
  }

  #dispatch<K extends keyof RtChatEventDetails>(type: K, detail: RtChatEventDetails[K]): void {
    this.dispatchEvent(rtEvent(type, detail));
  }
}
