/**
 * The demo app: open or create a room (its URL is the share link), pick models, and watch them
 * answer side by side in <rt-chat>, loaded from the same bundle any host page would embed.
 */

import type { ModelInfo, WelcomeFrame } from "../src/client/frames.js";
import type { RtChatElement } from "../src/element/rt-chat.js";

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
const NAME_KEY = "rtserver.name";

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`#${id} is missing from index.html`);
  return node;
}

/** The room of this page: /r/{room}, or ?room= for servers that cannot route /r/. */
function roomFromUrl(url: URL): string | null {
  const match = /^\/r\/([^/]+)\/?$/.exec(url.pathname);
  const room = match?.[1] ? decodeURIComponent(match[1]) : url.searchParams.get("room");
  return room && ROOM_ID.test(room) ? room : null;
}

function randomRoom(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `room-${Array.from(bytes, (b) => (b % 36).toString(36)).join("")}`;
}

function guestName(): string {
  return `Guest ${Math.floor(1000 + Math.random() * 9000)}`;
}

function savedName(): string {
  const saved = localStorage.getItem(NAME_KEY)?.trim();
  if (saved) return saved;
  const name = guestName();
  localStorage.setItem(NAME_KEY, name);
  return name;
}

function showStart(): void {
  byId("start", HTMLElement).hidden = false;
  const form = byId("open-form", HTMLFormElement);
  const roomInput = byId("room-input", HTMLInputElement);
  const nameInput = byId("name-input", HTMLInputElement);
  nameInput.value = savedName();
  const open = (room: string) => {
    localStorage.setItem(NAME_KEY, nameInput.value.trim() || guestName());
    location.assign(`/r/${encodeURIComponent(room)}`);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (form.reportValidity()) open(roomInput.value.trim());
  });
  byId("new-room", HTMLButtonElement).addEventListener("click", () => open(randomRoom()));
  roomInput.focus();
}

/**
 * On a narrow screen the toolbar folds behind the header's "Room options" button (the CSS
 * decides when it is shown); Esc, the button or a press outside it closes it again.
 */
function foldToolbar(): void {
  const button = byId("room-menu", HTMLButtonElement);
  const toolbar = byId("toolbar", HTMLElement);
  const setOpen = (open: boolean) => {
    button.setAttribute("aria-expanded", String(open));
    toolbar.toggleAttribute("data-open", open);
  };
  button.hidden = false;
  button.addEventListener("click", () => setOpen(!toolbar.hasAttribute("data-open")));
  toolbar.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !toolbar.hasAttribute("data-open")) return;
    setOpen(false);
    button.focus();
  });
  document.addEventListener("pointerdown", (event) => {
    const target = event.target instanceof Node ? event.target : null;
    if (target && !toolbar.contains(target) && !button.contains(target)) setOpen(false);
  });
}

function showRoom(room: string, url: URL): void {
  byId("room", HTMLElement).hidden = false;
  foldToolbar();
  document.title = `${room} · rtserver`;
  const chat = byId("chat", HTMLElement) as RtChatElement;
  const share = byId("share-url", HTMLInputElement);
  const nameInput = byId("name", HTMLInputElement);
  const picker = byId("models", HTMLFieldSetElement);
  let chosen = (url.searchParams.get("models") ?? "").split(",").filter(Boolean);

  const updateUrl = () => {
    const next = new URL(`/r/${encodeURIComponent(room)}`, location.origin);
    if (chosen.length > 0) next.searchParams.set("models", chosen.join(","));
    history.replaceState(null, "", next);
    share.value = next.href;
  };

  const drawPicker = (models: ModelInfo[]) => {
    const known = new Set(models.map((m) => m.id));
    chosen = chosen.filter((id) => known.has(id));
    // Without a (valid) choice in the URL, start from the server's defaults.
    if (chosen.length === 0) chosen = models.filter((m) => m.default).map((m) => m.id);
    picker.replaceChildren(picker.querySelector("legend") ?? document.createElement("legend"));
    for (const model of models) {
      const label = document.createElement("label");
      label.className = "chip";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = model.id;
      box.checked = chosen.includes(model.id);
      box.addEventListener("change", () => {
        const picked = [...picker.querySelectorAll("input:checked")].map(
          (b) => (b as HTMLInputElement).value,
        );
        // A room needs at least one model to ask; keep the last one ticked.
        if (picked.length === 0) {
          box.checked = true;
          return;
        }
        chosen = picked;
        chat.setAttribute("models", chosen.join(","));
        updateUrl();
      });
      label.append(box, document.createTextNode(model.label));
      label.title = model.simulated ? `${model.id}: simulated on the server` : model.id;
      picker.append(label);
    }
    chat.setAttribute("models", chosen.join(","));
    updateUrl();
  };

  chat.addEventListener("rt-ready", (event: CustomEvent<WelcomeFrame>) =>
    drawPicker(event.detail.models),
  );
  nameInput.value = savedName();
  nameInput.addEventListener("change", () => {
    const name = nameInput.value.trim() || guestName();
    nameInput.value = name;
    localStorage.setItem(NAME_KEY, name);
    chat.setAttribute("name", name);
  });
  byId("copy", HTMLButtonElement).addEventListener("click", async (event) => {
    const button = event.currentTarget as HTMLButtonElement;
    try {
      await navigator.clipboard.writeText(share.value);
      button.textContent = "Copied";
    } catch {
      share.select();
      button.textContent = "Press Ctrl+C";
    }
    setTimeout(() => (button.textContent = "Copy link"), 2000);
  });
  updateUrl();
  if (chosen.length > 0) chat.setAttribute("models", chosen.join(","));
  chat.setAttribute("name", nameInput.value);
  chat.setAttribute("room", room);
}

const url = new URL(location.href);
const room = roomFromUrl(url);
if (room) showRoom(room, url);
else showStart();
