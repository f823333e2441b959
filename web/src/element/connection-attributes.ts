/**
 * From the element's attributes to the options of its RtClient. Pure: the element passes its
 * attributes in, so this reads no DOM.
 */

import type { ClientOptions, TransportChoice } from "../client/client.js";
import type { CodecName } from "../client/codec.js";
import { ROOM_ID } from "../client/frames.js";

/** The attributes whose change means a new connection. */
export const CONNECTION_ATTRIBUTES = [
  "server",
  "room",
  "token",
  "name",
  "transport",
  "codec",
  "ping-interval",
  "ping-timeout",
];

export type AttributeReader = (name: string) => string | null;

/** The client's options, or null when the `room` attribute names no valid room. */
export function clientOptions(
  attribute: AttributeReader,
  defaultServer: string,
): ClientOptions | null {
  const room = attribute("room") ?? "";
  if (!ROOM_ID.test(room)) return null;
  return {
    server: attribute("server") ?? defaultServer,
    room,
    name: attribute("name") ?? undefined,
    token: attribute("token") ?? undefined,
    transport: transportChoice(attribute("transport")),
    codec: codecChoice(attribute("codec")),
    pingIntervalMs: seconds(attribute("ping-interval")),
    pingTimeoutMs: seconds(attribute("ping-timeout")),
  };
}

/** The history-page-size attribute: 1 to 200 messages, else the server's default. */
export function pageSize(value: string | null): number | undefined {
  const number = Number(value ?? "");
  return Number.isInteger(number) && number >= 1 && number <= 200 ? number : undefined;
}

function transportChoice(value: string | null): TransportChoice {
  return value === "websocket" || value === "sse" ? value : "auto";
}

function codecChoice(value: string | null): CodecName | undefined {
  return value === "json" || value === "msgpack" ? value : undefined;
}

/** An attribute in seconds as milliseconds; undefined (the default) unless a number ≥ 0. */
function seconds(value: string | null): number | undefined {
  const number = value === null || value.trim() === "" ? NaN : Number(value);
  return Number.isFinite(number) && number >= 0 ? number * 1000 : undefined;
}

/**
 * The `role` claim of a room token (viewer or member), read without checking the signature:
 * it only decides which buttons to draw, and the server refuses a viewer's actions anyway.
 * No token (open mode) or one that cannot be read counts as a member.
 */
export function tokenRole(token: string | undefined): "viewer" | "member" {
  const payload = token?.split(".")[1];
  if (!payload) return "member";
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const claims: unknown = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")));
    const role = typeof claims === "object" && claims !== null ? (claims as { role?: unknown }).role : null;
    return role === "viewer" ? "viewer" : "member";
  } catch {
    return "member";
  }
}
