/**
 * Entry of the `rt-chat.js` bundle: registers <rt-chat>. Loaded as a classic script, so that a
 * page on any origin can embed it with one tag and no CORS set-up:
 *
 *   <script src="https://rt.example.com/static/rt-chat.js" defer></script>
 *   <rt-chat room="team-room"></rt-chat>
 */

import { RtChatElement } from "./rt-chat.js";

// Read while the script runs: document.currentScript is null once it has finished. The server
// is the folder above static/, which keeps working behind a proxy that adds a path prefix.
const script = document.currentScript;
if (script instanceof HTMLScriptElement && script.src) {
  RtChatElement.defaultServer = new URL("../", script.src).href;
}

if (!customElements.get("rt-chat")) customElements.define("rt-chat", RtChatElement);

declare global {
  interface HTMLElementTagNameMap {
    "rt-chat": RtChatElement;
  }
  interface Window {
    RtChatElement: typeof RtChatElement;
  }
}

window.RtChatElement = RtChatElement;
