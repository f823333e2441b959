/**
 * Model output as markdown: parsed by marked, sanitised by DOMPurify, drawn incrementally.
 *
 * Model text is untrusted. Raw HTML in it is shown as text rather than rendered, DOMPurify then
 * removes anything that could still run script (such as `javascript:` links), and images become
 * links: an image loads by itself, so a model told to by a hostile document could leak the
 * conversation through its URL.
 */

import DOMPurify from "dompurify";
import { Marked } from "marked";

import { stableBoundary } from "./markdown-blocks.js";

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const marked = new Marked({ gfm: true, async: false });
marked.use({
  renderer: {
    html: ({ text }) => escapeHtml(text),
    image: ({ href, text }) => `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`,
  },
});

let purifier: ReturnType<typeof DOMPurify> | null = null;

function sanitizer(): ReturnType<typeof DOMPurify> {
  if (purifier) return purifier;
  // An instance of our own, so that its hook and settings do not touch a DOMPurify of the page.
  const instance = DOMPurify(window);
  instance.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
  purifier = instance;
  return instance;
}

/** Markdown to HTML that is safe to assign to innerHTML. */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false });
  return sanitizer().sanitize(html, {
    USE_PROFILES: { html: true },
    FORBID_TAGS: [
      "style",
      "form",
      "input",
      "button",
      "textarea",
      "select",
      "img",
      "video",
      "audio",
    ],
    FORBID_ATTR: ["style", "id", "name"],
    ALLOW_DATA_ATTR: false,
  });
}

/**
 * One reply's text, drawn as it streams: finished blocks are rendered once and kept, and only
 * the tail is rendered again on each update, so the cost per frame stays small and an open
 * construct (an unclosed code fence, half a table) is confined to the tail's own element.
 */
export class MarkdownView {
  readonly element: HTMLElement;
  readonly #blocks: HTMLElement;
  readonly #tail: HTMLElement;
  #stableText = "";
  #tailText: string | null = null;
  #final: string | null = null;

  constructor(element: HTMLElement) {
    this.element = element;
    this.#blocks = element.ownerDocument.createElement("div");
    this.#tail = element.ownerDocument.createElement("div");
    this.element.replaceChildren(this.#blocks, this.#tail);
  }

  /** Shows `text`; `done` once the stream has ended renders the whole text in one piece. */
  update(text: string, done: boolean): void {
    if (done) {
      if (this.#final === text) return;
      this.#final = text;
      this.#stableText = "";
      this.#tailText = null;
      this.#blocks.innerHTML = renderMarkdown(text);
      this.#tail.replaceChildren();
      return;
    }
    if (this.#final !== null || !text.startsWith(this.#stableText)) {
      this.#final = null;
      this.#stableText = "";
      this.#blocks.replaceChildren();
    }
    const boundary = stableBoundary(text);
    if (boundary > this.#stableText.length) {
      const block = this.element.ownerDocument.createElement("div");
      block.innerHTML = renderMarkdown(text.slice(this.#stableText.length, boundary));
      this.#blocks.append(block);
      this.#stableText = text.slice(0, boundary);
    }
    const tail = text.slice(this.#stableText.length);
    if (tail !== this.#tailText) {
      this.#tail.innerHTML = renderMarkdown(tail);
      this.#tailText = tail;
    }
  }
}
