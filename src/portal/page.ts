/** The portal's one HTML page: a shell that the browser modules in `web/` fill (no inline script, for the CSP). */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fleethub portal</title>
<link rel="stylesheet" href="/portal/style.css">
<script type="module" src="/portal/web/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><span class="brand">Fleethub</span><span id="who"></span></header>
<div class="layout">
<nav id="nav" aria-label="Blades"></nav>
<main id="main" tabindex="-1"><p>Loading…</p></main>
</div>
</body>
</html>
`;

export const STYLE_CSS = `
:root { --fg: #1b1b1b; --muted: #505050; --line: #c8c8c8; --accent: #0058ad; --bad: #a4262c; --ok: #0b6a0b; --bg2: #f3f2f1; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px; z-index: 2; }
.top { display: flex; justify-content: space-between; align-items: center; background: #1f1f1f; color: #fff; padding: 8px 16px; }
.brand { font-weight: 600; }
.layout { display: flex; min-height: calc(100vh - 40px); }
#nav { width: 220px; background: var(--bg2); border-right: 1px solid var(--line); padding: 8px 0; }
#nav h2 { font-size: 12px; text-transform: uppercase; color: var(--muted); margin: 12px 16px 4px; }
#nav a { display: block; padding: 6px 16px; color: var(--fg); text-decoration: none; }
#nav a[aria-current="page"] { background: #fff; border-left: 3px solid var(--accent); font-weight: 600; }
#nav a:hover, #nav a:focus { background: #e1dfdd; }
main { flex: 1; padding: 16px 24px; min-width: 0; }
main:focus { outline: none; }
h1 { font-size: 22px; margin: 0 0 12px; font-weight: 600; }
h2 { font-size: 16px; margin: 20px 0 8px; }
.toolbar { display: flex; gap: 8px; flex-wrap: wrap; margin: 8px 0 12px; }
button, .button { font: inherit; padding: 5px 14px; border: 1px solid #8a8886; background: #fff; color: var(--fg); border-radius: 2px; cursor: pointer; text-decoration: none; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button:disabled { opacity: .55; cursor: default; }
button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 2px solid #000; outline-offset: 1px; }
.field { margin: 10px 0; max-width: 640px; }
.field > label, .field > .label { display: block; font-weight: 600; margin-bottom: 3px; }
input[type=text], input[type=password], input[type=number], input[type=datetime-local], select, textarea { font: inherit; width: 100%; padding: 5px 8px; border: 1px solid #8a8886; border-radius: 2px; }
textarea { font-family: ui-monospace, Menlo, Consolas, monospace; min-height: 140px; }
textarea.tall { min-height: 320px; }
.inline { display: flex; gap: 6px; align-items: center; } .inline input { flex: 1; }
.radios label { margin-right: 14px; font-weight: normal; }
.error { color: var(--bad); margin-top: 3px; white-space: pre-wrap; }
.error:empty { display: none; }
.status { color: var(--ok); }
.tiles { display: flex; gap: 12px; flex-wrap: wrap; }
.tile { border: 1px solid var(--line); padding: 12px 16px; min-width: 180px; }
.tile .n { font-size: 28px; font-weight: 600; display: block; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg2); font-weight: 600; }
td pre { margin: 0; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
pre.result { background: var(--bg2); padding: 8px; white-space: pre-wrap; word-break: break-all; }
.tabs { display: flex; gap: 2px; border-bottom: 1px solid var(--line); margin-bottom: 12px; flex-wrap: wrap; }
.tabs a { padding: 6px 12px; text-decoration: none; color: var(--fg); }
.tabs a[aria-current="page"] { border-bottom: 3px solid var(--accent); font-weight: 600; }
.muted { color: var(--muted); }
dl.props { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; } dl.props dt { font-weight: 600; } dl.props dd { margin: 0; word-break: break-all; }
dialog { border: 1px solid var(--line); padding: 16px 20px; }
svg.chart { border: 1px solid var(--line); background: #fff; }
fieldset { border: 1px solid var(--line); margin: 12px 0; max-width: 680px; } legend { font-weight: 600; }
`;
