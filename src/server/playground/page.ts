/** The playground's HTML: static markup; the editor and behaviour come from /playground/app.js. */
export const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mayfly playground</title>
<link rel="stylesheet" href="/playground/style.css">
<script type="module" src="/playground/app.js"></script>
</head>
<body>
<header>
  <h1>mayfly <span>playground</span></h1>
  <label>Example <select id="example"></select></label>
  <button id="share" class="secondary" title="Put this code and these fields in the page's address">Share</button>
  <button id="run" title="Ctrl/Cmd+Enter">Run ▶</button>
</header>
<main>
  <section class="left">
    <div id="editor" aria-label="worker code"></div>
    <fieldset>
      <legend>Request</legend>
      <select id="method"><option>GET</option><option>POST</option><option>PUT</option><option>PATCH</option><option>DELETE</option></select>
      <input id="path" value="/" aria-label="path" spellcheck="false">
      <textarea id="body" rows="2" placeholder="request body" aria-label="request body" spellcheck="false"></textarea>
    </fieldset>
    <fieldset>
      <legend>Limits and egress</legend>
      <label>CPU ms <input id="cpu-ms" type="number" min="1"></label>
      <label>Memory MB <input id="memory-mb" type="number" min="1"></label>
      <label>Wall ms <input id="wall-ms" type="number" min="1"></label>
      <label class="wide">Allowed hosts <input id="allow-net" placeholder="none: no network (e.g. example.com, api.github.com)" spellcheck="false"></label>
      <label class="wide">Token <input id="token" type="password" placeholder="only when the server has tokens" autocomplete="off"></label>
    </fieldset>
  </section>
  <section class="right" id="result" data-state="idle">
    <div class="stats">
      <div><span>Status</span><b id="status">—</b></div>
      <div><span>Outcome</span><b id="outcome" class="badge">—</b></div>
      <div><span>CPU</span><b id="cpu">—</b></div>
      <div><span>Wall</span><b id="wall">—</b></div>
      <div><span>Memory</span><b id="memory">—</b></div>
    </div>
    <p id="error" role="alert"></p>
    <h2>Response</h2>
    <pre id="response-headers"></pre>
    <pre id="response-body"></pre>
    <h2>Logs</h2>
    <ul id="logs"></ul>
  </section>
</main>
</body>
</html>
`;
