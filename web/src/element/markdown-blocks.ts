/**
 * Where streaming markdown can be cut into a finished part and a growing tail.
 *
 * Pure text logic (no DOM), so that it is tested in Node. The finished part ends after a blank
 * line outside any code fence: what comes later cannot change how it renders (near enough; the
 * whole text is rendered once more when the stream ends, for the rare constructs that span a
 * blank line, such as loose lists).
 */

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const BLANK = /^[ \t]*$/;

/** The offset at which `text` splits into a stable prefix and a tail still being written. */
export function stableBoundary(text: string): number {
  let boundary = 0;
  let fence: { char: string; length: number } | null = null;
  let start = 0;
  while (start < text.length) {
    const end = text.indexOf("\n", start);
    // The last line has no newline yet: it is still being written, so it decides nothing.
    if (end === -1) break;
    const line = text.slice(start, end);
    const opener = FENCE_OPEN.exec(line);
    if (fence) {
      if (opener?.[1] && opener[1][0] === fence.char && opener[1].length >= fence.length) {
        if (BLANK.test(line.slice(opener[0].length))) fence = null;
      }
    } else if (opener?.[1]) {
      fence = { char: opener[1][0] ?? "`", length: opener[1].length };
    } else if (BLANK.test(line)) {
      boundary = end + 1;
    }
    start = end + 1;
  }
  return boundary;
}
