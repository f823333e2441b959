/**
 * The DOM events <rt-chat> dispatches for its host page. All bubble and are composed, so a
 * listener on the element, on an ancestor or on the document receives them.
 */

import type { ConnectionInfo } from "../client/client.js";
import type {
  ErrorFrame,
  MessageFrame,
  ModelSwitchFrame,
  PresenceEntry,
  StreamEndFrame,
  StreamStartFrame,
  WelcomeFrame,
} from "../client/frames.js";

export interface RtStreamEndDetail extends StreamEndFrame {
  /** The model whose stream ended. */
  model: string;
  /** The reply's whole text as far as it got. */
  text: string;
}

export interface RtChatEventDetails {
  /** Connected (each welcome, after every reconnect too). */
  "rt-ready": WelcomeFrame;
  /** Connection state changed. */
  "rt-connection": ConnectionInfo;
  /** A user message was posted in the room. */
  "rt-message": MessageFrame;
  "rt-stream-start": StreamStartFrame;
  "rt-stream-end": RtStreamEndDetail;
  /** A routed stream's model failed before its first token and the next took over. */
  "rt-model-switch": ModelSwitchFrame;
  /** The server refused something this element sent. */
  "rt-error": ErrorFrame;
  /** Who is in the room changed. */
  "rt-presence": { participants: PresenceEntry[]; count: number };
  /** `mode="launcher"`: its panel was opened or closed (the `open` attribute changed). */
  "rt-toggle": { open: boolean };
}

export type RtChatEventMap = {
  [K in keyof RtChatEventDetails]: CustomEvent<RtChatEventDetails[K]>;
};

declare global {
  // Typed listeners for host pages written in TypeScript: el.addEventListener("rt-stream-end", …)
  interface HTMLElementEventMap extends RtChatEventMap {}
}

export function rtEvent<K extends keyof RtChatEventDetails>(
  type: K,
  detail: RtChatEventDetails[K],
): CustomEvent<RtChatEventDetails[K]> {
  return new CustomEvent(type, { detail, bubbles: true, composed: true });
}
