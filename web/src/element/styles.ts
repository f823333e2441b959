/**
 * The element's shadow stylesheet. Every colour, size and font reads a public `--rt-*` custom
 * property first (documented in docs/howto/embed-widget.md), so a host page can restyle the
 * widget without reaching into its shadow root.
 */

export const LANE_COLORS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2"];
export const LANE_COLORS_DARK = ["#60a5fa", "#fbbf24", "#34d399", "#f472b6", "#a78bfa", "#22d3ee"];

const laneVars = (colors: string[]) =>
  colors.map((color, i) => `--_lane-${i + 1}: var(--rt-lane-${i + 1}, ${color});`).join("\n  ");

const dark = `
  --_bg: var(--rt-bg, #111318);
  --_surface: var(--rt-surface, #1a1d24);
  --_fg: var(--rt-fg, #e6e8ee);
  --_muted: var(--rt-muted, #9aa3b2);
  --_border: var(--rt-border, #2c313c);
  --_accent: var(--rt-accent, #60a5fa);
  --_accent-fg: var(--rt-accent-fg, #0b1220);
  --_danger: var(--rt-danger, #f87171);
  --_code-bg: var(--rt-code-bg, #0c0e12);
  ${laneVars(LANE_COLORS_DARK)}
`;

export const STYLES = `
:host {
  --_bg: var(--rt-bg, #ffffff);
  --_surface: var(--rt-surface, #f6f7f9);
  --_fg: var(--rt-fg, #1b1f24);
  --_muted: var(--rt-muted, #5b6472);
  --_border: var(--rt-border, #dde1e6);
  --_accent: var(--rt-accent, #2563eb);
  --_accent-fg: var(--rt-accent-fg, #ffffff);
  --_danger: var(--rt-danger, #b91c1c);
  --_code-bg: var(--rt-code-bg, #eef0f3);
  ${laneVars(LANE_COLORS)}
  --_radius: var(--rt-radius, 10px);
  --_lane-min: var(--rt-lane-min-width, 16rem);
  display: block;
  height: var(--rt-height, 36rem);
  min-height: 16rem;
  color: var(--_fg);
  background: var(--_bg);
  font: var(--rt-font-size, 15px) / 1.5
    var(--rt-font, system-ui, -apple-system, "Segoe UI", sans-serif);
  border: 1px solid var(--_border);
  border-radius: var(--_radius);
  overflow: hidden;
  contain: content;
}
:host([hidden]) { display: none; }
:host([theme="dark"]) { ${dark} }
@media (prefers-color-scheme: dark) { :host([theme="auto"]) { ${dark} } }

*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button, textarea { font: inherit; color: inherit; }
.sr-only {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;
}

.root { display: flex; flex-direction: column; height: 100%; position: relative; }

.bar {
  display: flex; flex-wrap: wrap; align-items: center; gap: .35rem 1rem;
  padding: .5rem .85rem; border-bottom: 1px solid var(--_border); background: var(--_surface);
  font-size: .85em; color: var(--_muted);
}
.status { display: inline-flex; align-items: center; gap: .4rem; font-weight: 600; }
.status::before {
  content: ""; width: .6rem; height: .6rem; border-radius: 50%; background: var(--_muted);
}
.status[data-state="open"] { color: var(--_fg); }
.status[data-state="open"]::before { background: #16a34a; }
.status[data-state="reconnecting"]::before, .status[data-state="connecting"]::before {
  background: #d97706;
}
.status[data-state="closed"]::before { background: var(--_danger); }
.room { font-family: var(--rt-mono, ui-monospace, monospace); }
.people {
  margin-left: auto;
  display: flex;
  gap: .4rem;
  flex-wrap: wrap;
  list-style: none;
  padding: 0;
  margin-block: 0;
}
.people li {
  padding: .05rem .5rem;
  border-radius: 999px;
  border: 1px solid var(--_border);
  background: var(--_bg);
}
.people li[data-me] { border-color: var(--_accent); }
.people li[data-typing]::after { content: " · typing…"; color: var(--_accent); }

.log {
  flex: 1; overflow: auto; overscroll-behavior: contain; position: relative;
  padding: 0 .85rem .85rem;
  /* The element keeps the reader's place itself when earlier turns go in above; the browser's
     own scroll anchoring would move it a second time. */
  overflow-anchor: none;
}
.log:focus-visible { outline: 2px solid var(--_accent); outline-offset: -2px; }
.grid {
  display: grid; gap: .75rem;
  grid-template-columns: repeat(var(--lanes, 1), minmax(var(--_lane-min), 1fr));
}
.lanes {
  position: sticky; top: 0; z-index: 2; background: var(--_bg);
  padding: .6rem 0 .5rem; border-bottom: 1px solid var(--_border); margin-bottom: .75rem;
}
.lane {
  display: flex; align-items: center; gap: .5rem; min-width: 0;
  padding: .35rem .5rem .35rem .65rem; border-radius: calc(var(--_radius) * .7);
  border-left: 4px solid var(--lane-color); background: var(--_surface);
}
.lane-label { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.lane-state { font-size: .8em; color: var(--_muted); margin-left: auto; white-space: nowrap; }
.lane-switch { font-size: .75em; color: var(--_muted); white-space: nowrap; }
.lane-switch:empty { display: none; }
.lane[data-streaming] .lane-state { color: var(--lane-color); font-weight: 600; }
.lane[data-streaming] .lane-state::before {
  content: ""; display: inline-block; width: .55rem; height: .55rem; margin-right: .3rem;
  border-radius: 50%; background: var(--lane-color); animation: pulse 1s ease-in-out infinite;
}

.turn { margin-bottom: 1.25rem; }
.prompt {
  margin: 0 0 .6rem; padding: .55rem .8rem; border-radius: var(--_radius);
  background: var(--_surface); border: 1px solid var(--_border);
  white-space: pre-wrap; overflow-wrap: anywhere;
}
.prompt .who { display: block; font-size: .8em; font-weight: 600; color: var(--_muted); }
.reply {
  min-width: 0; display: flex; flex-direction: column; gap: .35rem;
  padding: .6rem .8rem; border-radius: var(--_radius); border: 1px solid var(--_border);
  border-top: 3px solid var(--lane-color); background: var(--_bg);
}
.reply[data-status="cancelled"], .reply[data-status="interrupted"] { opacity: .85; }
.reply[data-status="error"] { border-color: var(--_danger); border-top-color: var(--_danger); }
.reply-head {
  display: flex;
  gap: .4rem;
  align-items: baseline;
  font-size: .8em;
  color: var(--_muted);
}
.reply-head .model { color: var(--lane-color); font-weight: 700; }

/* The answer (.md) and the reasoning beside it are both model markdown, drawn alike. */
:is(.md, .reasoning-text) { overflow-wrap: anywhere; min-width: 0; }
:is(.md, .reasoning-text) :first-child { margin-top: 0; }
:is(.md, .reasoning-text) :last-child { margin-bottom: 0; }
:is(.md, .reasoning-text) :is(p, ul, ol, pre, blockquote, table) { margin: 0 0 .6em; }
:is(.md, .reasoning-text) pre {
  background: var(--_code-bg); padding: .6em .75em; border-radius: 6px;
  overflow-x: auto; max-width: 100%; white-space: pre;
}
:is(.md, .reasoning-text) code {
  font-family: var(--rt-mono, ui-monospace, monospace); font-size: .9em;
}
:is(.md, .reasoning-text) :not(pre) > code {
  background: var(--_code-bg); padding: .05em .3em; border-radius: 4px;
}
:is(.md, .reasoning-text) table {
  border-collapse: collapse; display: block; overflow-x: auto; max-width: 100%;
}
:is(.md, .reasoning-text) :is(th, td) { border: 1px solid var(--_border); padding: .2em .5em; }
:is(.md, .reasoning-text) blockquote {
  border-left: 3px solid var(--_border);
  margin-left: 0;
  padding-left: .75em;
  color: var(--_muted);
}
:is(.md, .reasoning-text) a { color: var(--_accent); }
:is(.md, .reasoning-text) :is(h1, h2, h3, h4) { font-size: 1.05em; margin: .8em 0 .4em; }
.reply[data-status="streaming"] .md > div:last-child > :last-child::after {
  content: "▍"; color: var(--lane-color); animation: blink 1s steps(2) infinite;
}
.reasoning {
  font-size: .9em; color: var(--_muted);
  border-left: 2px solid var(--_border); padding-left: .6em;
}
.reasoning[hidden] { display: none; }
.reasoning > summary { cursor: pointer; font-size: .9em; font-weight: 600; }
.reasoning-text { margin-top: .35em; }
.tools { display: grid; gap: .3rem; }
.tools:empty { display: none; }
.tool {
  font-size: .85em;
  border: 1px dashed var(--_border);
  border-radius: 6px;
  padding: .3em .5em;
}
.tool pre {
  margin: .2em 0 0;
  white-space: pre-wrap;
  overflow-wrap: anywhere;
  font-family: var(--rt-mono, ui-monospace, monospace);
}
.tool-head { display: flex; gap: .5em; align-items: baseline; flex-wrap: wrap; }
.tool-state { color: var(--_muted); font-size: .9em; }
.tool[data-state="waiting"] { border-style: solid; border-color: var(--_accent); }
.tool[data-state="error"] .tool-state, .tool[data-state="error"] .tool-result summary {
  color: var(--_danger);
}
.tool-args:empty { display: none; }
.tool-ask { display: flex; gap: .4em; margin-top: .3em; }
.tool-ask[hidden], .tool-decision[hidden], .tool-result[hidden] { display: none; }
.tool-decision { margin: .2em 0 0; color: var(--_muted); }
.tool-result summary { cursor: pointer; color: var(--_muted); }
.tool-result pre { max-height: 16em; overflow: auto; }
.stats { font-size: .78em; color: var(--_muted); font-variant-numeric: tabular-nums; }
.stats:empty { display: none; }
.reason { margin: 0; font-size: .85em; font-weight: 600; color: var(--_muted); }
.reply[data-status="error"] .reason { color: var(--_danger); }
.reason:empty { display: none; }
.empty { color: var(--_muted); text-align: center; padding: 2rem 1rem; grid-column: 1 / -1; }
.earlier {
  display: flex; flex-direction: column; align-items: center; gap: .35rem; margin-bottom: .75rem;
}
.earlier-button[aria-disabled="true"] { cursor: progress; opacity: .7; }
.earlier-start { margin: 0; font-size: .85em; color: var(--_muted); }
.earlier-error { margin: 0; font-size: .85em; color: var(--_danger); }
.earlier-error:empty { display: none; }

.jump {
  position: absolute; right: 1rem; bottom: calc(var(--composer-height, 8rem) + .75rem); z-index: 3;
  border-radius: 999px; padding: .35rem .9rem; border: 1px solid var(--_border);
  background: var(--_surface); cursor: pointer; box-shadow: 0 2px 8px rgb(0 0 0 / .15);
}

.composer {
  border-top: 1px solid var(--_border);
  padding: .6rem .85rem .7rem;
  background: var(--_surface);
}
.composer-row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; }
textarea {
  flex: 1 1 14rem; resize: none; min-height: 2.6rem; max-height: 10rem; padding: .5rem .65rem;
  border: 1px solid var(--_border); border-radius: calc(var(--_radius) * .7);
  background: var(--_bg);
}
textarea:focus-visible, button:focus-visible {
  outline: 2px solid var(--_accent);
  outline-offset: 1px;
}
.actions { display: flex; gap: .4rem; flex-wrap: wrap; justify-content: flex-end; margin-left: auto; }
button {
  cursor: pointer; border-radius: calc(var(--_radius) * .7); border: 1px solid var(--_border);
  background: var(--_bg); padding: .45rem .8rem; white-space: nowrap;
}
button:disabled { cursor: not-allowed; opacity: .5; }
button.primary {
  background: var(--_accent);
  color: var(--_accent-fg);
  border-color: var(--_accent);
  font-weight: 600;
}
button.danger { color: var(--_danger); border-color: currentColor; }
.lane button { padding: .1rem .55rem; font-size: .8em; }
.hint { margin: .35rem 0 0; font-size: .78em; color: var(--_muted); }
.room-queue {
  border-top: 1px solid var(--_border); padding: .45rem .85rem; background: var(--_surface);
  font-size: .85em; max-height: 9rem; overflow: auto;
}
.room-queue-title { margin: 0 0 .25rem; font-size: 1em; font-weight: 600; color: var(--_muted); }
.room-queue-list { margin: 0; padding-left: 1.4rem; display: grid; gap: .2rem; }
.room-queue-entry { display: flex; gap: .5rem; align-items: center; min-width: 0; }
.room-queue-entry .who { font-weight: 600; white-space: nowrap; }
.room-queue-entry q {
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; flex: 1;
}
.room-queue-entry button, .reply-actions button { padding: .1rem .55rem; font-size: .8em; }
.reply-actions { display: flex; gap: .4rem; flex-wrap: wrap; }
/* No space for the row when none of its buttons shows. */
.reply-actions:not(:has(button:not([hidden]))) { display: none; }
.reply[data-version="older"] { opacity: .75; border-style: dashed; }
.turn[data-withdrawn] .prompt { opacity: .65; }
.withdrawn-note { display: block; font-size: .8em; font-style: italic; color: var(--_muted); }
.alert { margin: .35rem 0 0; font-size: .85em; color: var(--_danger); }
.alert:empty { display: none; }

@keyframes pulse { 50% { opacity: .25; } }
@keyframes blink { 50% { opacity: 0; } }
@media (prefers-reduced-motion: reduce) {
  .lane[data-streaming] .lane-state::before,
  .reply[data-status="streaming"] .md > div:last-child > :last-child::after { animation: none; }
}
`;
