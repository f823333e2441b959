/** Which of the element's handlers hear which of its RtClient's events. */

import type { ConnectionInfo, RtClient } from "../client/client.js";
import type {
  ErrorFrame,
  PresenceDiffFrame,
  PresenceEntry,
  RoomEvent,
  WelcomeFrame,
} from "../client/frames.js";

export interface ClientListeners {
  connection(info: ConnectionInfo): void;
  welcome(welcome: WelcomeFrame): void;
  /** A whole participant list, from servers before `presence_diff`. */
  presence(participants: PresenceEntry[]): void;
  presenceDiff(diff: PresenceDiffFrame): void;
  error(frame: ErrorFrame): void;
  /** Every conversation event: messages, stream starts, tokens, reasoning, tool calls and
   * their approvals and results, ends, and prompts leaving the room's queue (`unqueued`). */
  roomEvent(event: RoomEvent): void;
}

/** Listens to `client`; the returned function stops listening. */
export function listenTo(client: RtClient, listeners: ClientListeners): () => void {
  const offs = [
    client.on("state", (info) => listeners.connection(info)),
    client.on("welcome", (welcome) => listeners.welcome(welcome)),
    client.on("presence", (frame) => listeners.presence(frame.participants)),
    client.on("presence_diff", (frame) => listeners.presenceDiff(frame)),
    client.on("error", (frame) => listeners.error(frame)),
    client.on("message", (event) => listeners.roomEvent(event)),
    client.on("stream_start", (event) => listeners.roomEvent(event)),
    client.on("token", (event) => listeners.roomEvent(event)),
    client.on("tool_call", (event) => listeners.roomEvent(event)),
    client.on("stream_end", (event) => listeners.roomEvent(event)),
    client.on("model_switch", (event) => listeners.roomEvent(event)),
    client.on("reasoning", (event) => listeners.roomEvent(event)),
    client.on("tool_result", (event) => listeners.roomEvent(event)),
    client.on("tool_approval", (event) => listeners.roomEvent(event)),
    client.on("tool_decision", (event) => listeners.roomEvent(event)),
    client.on("unqueued", (event) => listeners.roomEvent(event)),
  ];
  return () => {
    for (const off of offs) off();
  };
}
