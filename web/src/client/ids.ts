/** Client-made frame ids. */

/**
 * A random id of 128 bits in hex. `crypto.randomUUID` would do, but browsers offer it only in
 * secure contexts, and an embedding page may be plain http.
 */
export function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
