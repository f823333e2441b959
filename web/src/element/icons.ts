/**
 * Small inline SVG icons for the compact controls. Each is decorative (aria-hidden): the
 * button it sits in keeps its words, shown or visually hidden, as its accessible name.
 */

const PATHS = {
  send: "M3 11.5 20.5 3.5 13 21l-2.5-7.5L3 11.5Z",
  queue: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18Zm0 4v5l3.5 2",
  interrupt: "M13 2 4.5 13.5H11L10 22l8.5-11.5H12L13 2Z",
  stop: "M6.5 6.5h11v11h-11z",
  chat: "M4 5h16v11H9l-5 4V5Z",
  close: "M6 6l12 12M18 6 6 18",
} as const;

export type IconName = keyof typeof PATHS;

const SVG_NS = "http://www.w3.org/2000/svg";

export function icon(doc: Document, name: IconName): SVGSVGElement {
  const svg = doc.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("icon");
  const path = doc.createElementNS(SVG_NS, "path");
  path.setAttribute("d", PATHS[name]);
  svg.append(path);
  return svg;
}

/** Swaps the icon drawn in `svg` for `name`'s. */
export function setIcon(svg: SVGSVGElement, name: IconName): void {
  svg.firstElementChild?.setAttribute("d", PATHS[name]);
}
