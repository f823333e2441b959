/**
 * The element's stylesheet for small sizes, touch and the launcher. The layout follows the
 * element's own width, by container queries on its box (`rt-chat`: the host, or the panel in
 * launcher mode), never the window's: a sidebar on a wide screen is as narrow as a phone.
 *
 * Below 35rem two lanes of `--rt-lane-min-width` (16rem) no longer fit side by side: the
 * stylesheet then sets `--_layout: tabs`, which the script reads (layout-watch.ts) to draw the
 * lane heads as tabs, and the controls compact: icon buttons, one-line status, a head count.
 * More lanes than fit in a wider box become tabs too (the script measures `.lanes-probe`).
 */

export const COMPACT_STYLES = `
:host {
  container: rt-chat / inline-size;
  --_launcher-size: var(--rt-launcher-size, 3.5rem);
  --_launcher-right: var(--rt-launcher-right, 1.25rem);
  --_launcher-bottom: var(--rt-launcher-bottom, 1.25rem);
  --_panel-bottom: var(
    --rt-panel-bottom, calc(var(--_launcher-bottom) + var(--_launcher-size) + .75rem)
  );
  --_panel-right: var(--rt-panel-right, var(--_launcher-right));
  --_panel-left: var(--rt-panel-left, var(--rt-launcher-left, auto));
  --_z: var(--rt-z-index, 2147483000);
}
.root { --_layout: columns; }
/* Measured, never seen: as wide as the lanes need side by side. In a box of no size, so that
   it never makes the conversation scroll sideways. */
.probe-box { position: absolute; width: 0; height: 0; overflow: hidden; visibility: hidden; }
.lanes-probe {
  height: 1px;
  width: calc(var(--lanes, 1) * var(--_lane-min) + (var(--lanes, 1) - 1) * .75rem);
}
/* A scroll bar that comes and goes would change the lanes' room, and so the layout. */
.log { scrollbar-gutter: stable; }
.panel { display: contents; }

/* Touch: every control is at least 44 by 44 CSS pixels, and none needs a hover. */
button { min-height: 44px; min-width: 44px; }
.with-icon { display: inline-flex; align-items: center; justify-content: center; gap: .35rem; }
.icon {
  width: 1.25rem; height: 1.25rem; flex: none;
  fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round;
}
.with-icon .icon { display: none; }
.close { margin-left: .25rem; }

.lane-tab { display: flex; align-items: center; gap: .5rem; min-width: 0; flex: 1; }
.people-count { display: none; margin-left: auto; white-space: nowrap; }
.people-count[data-typing] { color: var(--_accent); }

/* The lanes as tabs: a strip that scrolls sideways by itself if it holds many. */
.lanes.tabs {
  display: flex; gap: .4rem; overflow-x: auto; overscroll-behavior-x: contain;
  scroll-snap-type: x proximity; padding: .4rem 0; margin-bottom: .5rem;
}
.lanes.tabs .lane {
  flex: 1 0 9.5rem; gap: 0; padding: 0; scroll-snap-align: start;
  border-left: 0; border-bottom: 3px solid transparent;
}
.lanes.tabs .lane[data-selected] {
  border-bottom-color: var(--lane-color);
  background: color-mix(in srgb, var(--lane-color) 14%, var(--_surface));
}
button.lane-tab {
  flex-direction: column; align-items: flex-start; justify-content: center; gap: 0;
  border: 0; background: transparent; padding: .25rem .55rem; text-align: left;
  border-radius: calc(var(--_radius) * .7);
}
button.lane-tab .lane-state { margin-left: 0; }
.lane-label { max-width: 100%; }
.lane[data-status="error"] .lane-state { color: var(--_danger); font-weight: 600; }
.root[data-layout="tabs"] .grid.replies { grid-template-columns: minmax(0, 1fr); }
.root[data-layout="tabs"] .reply { grid-column: 1 / -1 !important; }

@container rt-chat (width < 35rem) {
  .root { --_layout: tabs; }
  .bar { flex-wrap: nowrap; gap: .6rem; padding: .2rem .3rem .2rem .65rem; min-height: 2.25rem; }
  .status {
    display: block; flex: 0 1 auto; min-width: 0;
    overflow: hidden; white-space: nowrap; text-overflow: ellipsis;
  }
  .status::before { display: inline-block; margin-right: .4rem; vertical-align: baseline; }
  .room {
    flex: 0 1 auto; min-width: 0; overflow: hidden; white-space: nowrap; text-overflow: ellipsis;
  }
  .people { display: none; }
  .people-count { display: inline; flex: none; }
  .log { padding: 0 .5rem .5rem; }
  .composer { padding: .4rem .5rem; }
  .composer-row { flex-wrap: nowrap; gap: .35rem; align-items: flex-end; }
  textarea { flex: 1 1 auto; min-width: 0; min-height: 44px; max-height: 7rem; }
  .actions { flex-wrap: nowrap; gap: .3rem; }
  .with-icon .icon { display: block; }
  .with-icon .label {
    position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
    overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;
  }
  button.with-icon { padding: 0; width: 44px; }
  .lane button.cancel { width: 44px; padding: 0; }
  /* The hint stays for screen readers (it describes the box), out of sight. */
  .hint {
    position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
    overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;
  }
  .jump { right: .5rem; bottom: 5.5rem; }
  .empty { padding: 1rem .5rem; }
}

/* mode="launcher": a floating button; the room opens in a panel sized by custom properties. */
:host([mode="launcher"]) {
  display: block; height: 0; min-height: 0; border: 0; background: none;
  overflow: visible; contain: none; container-type: normal;
}
:host([mode="launcher"]) .panel {
  display: block; position: fixed; z-index: var(--_z);
  right: var(--_panel-right); left: var(--_panel-left);
  bottom: var(--_panel-bottom); top: var(--rt-panel-top, auto);
  width: var(--rt-panel-width, 25rem); height: var(--rt-panel-height, 37.5rem);
  /* A window smaller than the panel shrinks it: it stays clear of both edges at the
     default offset (1.25rem), by half a rem at least at the far one. */
  max-width: calc(100vw - 1.75rem);
  max-height: calc(100dvh - var(--_panel-bottom) - .5rem);
  container: rt-chat / inline-size;
  background: var(--_bg); border: 1px solid var(--_border); border-radius: var(--_radius);
  box-shadow: 0 12px 32px rgb(0 0 0 / .22); overflow: hidden;
}
:host([mode="launcher"]) .panel[hidden] { display: none !important; }
.launcher {
  position: fixed; z-index: var(--_z);
  right: var(--_launcher-right); left: var(--rt-launcher-left, auto);
  bottom: var(--_launcher-bottom);
  width: var(--_launcher-size); height: var(--_launcher-size); padding: 0;
  display: grid; place-items: center; border: 0; border-radius: 50%;
  background: var(--_accent); color: var(--_accent-fg); box-shadow: 0 4px 14px rgb(0 0 0 / .25);
}
.launcher .icon { width: 1.6rem; height: 1.6rem; }
.badge {
  position: absolute; top: -.3rem; right: -.3rem; min-width: 1.4rem; height: 1.4rem;
  padding: 0 .3rem; border-radius: 999px; display: grid; place-items: center;
  background: var(--_danger); color: #fff; font-size: .75rem; font-weight: 700; line-height: 1;
  z-index: 1; box-shadow: 0 0 0 2px var(--_bg);
}
.badge:empty { display: none; }
.launcher[data-streaming]::after {
  content: ""; position: absolute; inset: -5px; border-radius: 50%;
  border: 3px solid var(--_accent); animation: pulse 1.2s ease-in-out infinite;
}
@media (prefers-reduced-motion: reduce) { .launcher[data-streaming]::after { animation: none; } }
`;
