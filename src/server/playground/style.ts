/** The playground's stylesheet, served at /playground/style.css. */
export const style = `
:root { --bg: #0f1115; --panel: #171a21; --line: #2a2f3a; --text: #e6e6e6; --muted: #9aa3b2; --accent: #f6a821; --ok: #3fb950; --bad: #f85149; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--text); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 16px; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0 auto 0 0; } h1 span { color: var(--accent); font-weight: 400; }
h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 14px 0 6px; }
button { background: var(--accent); color: #111; border: 0; border-radius: 6px; padding: 7px 16px; font-weight: 600; cursor: pointer; }
button:disabled { opacity: .5; cursor: progress; }
button.secondary { background: transparent; color: var(--text); border: 1px solid var(--line); }
select, input, textarea { background: var(--panel); color: var(--text); border: 1px solid var(--line); border-radius: 5px; padding: 5px 7px; font: inherit; }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); height: calc(100vh - 53px); }
.left { display: flex; flex-direction: column; border-right: 1px solid var(--line); min-height: 0; }
#editor { flex: 1; min-height: 0; overflow: auto; }
#editor .cm-editor { height: 100%; } #editor .cm-scroller { font: 13px/1.5 ui-monospace, monospace; }
fieldset { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; border: 0; border-top: 1px solid var(--line); margin: 0; padding: 8px 12px; }
legend { float: left; width: 100%; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; }
#path { flex: 1; } #body { width: 100%; font-family: ui-monospace, monospace; }
label { color: var(--muted); font-size: 12px; } label input { width: 80px; margin-left: 4px; }
label.wide { flex: 1 1 45%; display: flex; align-items: center; } label.wide input { flex: 1; width: auto; }
.right { padding: 12px 16px; overflow: auto; }
.stats { display: grid; grid-template-columns: repeat(5, 1fr); gap: 8px; }
.stats div { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
.stats span { display: block; color: var(--muted); font-size: 11px; } .stats b { font: 600 14px ui-monospace, monospace; }
.badge.ok { color: var(--ok); } .badge.bad { color: var(--bad); }
#error { color: var(--bad); font-family: ui-monospace, monospace; min-height: 1em; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px; margin: 0 0 6px; white-space: pre-wrap; word-break: break-word; font: 12px/1.45 ui-monospace, monospace; }
#response-headers { color: var(--muted); }
#logs { list-style: none; margin: 0; padding: 0; font: 12px/1.5 ui-monospace, monospace; }
.log.warn { color: #d29922; } .log.error { color: var(--bad); }
#result[data-state="running"] .stats { opacity: .5; }
`;
