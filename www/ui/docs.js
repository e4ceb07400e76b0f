// The API docs page: Swagger UI (from npm, loaded by docs.html) rendering
// /api/openapi.json.  Swagger UI's own initializer is an inline script,
// which the Content-Security-Policy forbids; this module does its work.
// "Try it out" goes to this origin, whatever servers the document lists
// (it names script/server's http://localhost:3003).
const status = document.getElementById('docs-status');

function fail(text) {
  const p = document.createElement('p');
  p.className = 'msg msg-error';
  p.setAttribute('role', 'alert');
  p.textContent = text;
  status.replaceChildren(p);
}

async function main() {
  let spec;
  try {
    const res = await fetch('/api/openapi.json', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`the server answered ${res.status} ${res.statusText}`);
    spec = await res.json();
  } catch (e) {
    fail(`Could not load the API description /api/openapi.json: ${e.message}.`);
    return;
  }
  if (typeof window.SwaggerUIBundle !== 'function') {
    fail('Swagger UI did not load (/ui/vendor/swagger-ui/swagger-ui-bundle.js).');
    return;
  }
  spec.servers = [{ url: window.location.origin, description: 'This server' }];
  window.SwaggerUIBundle({
    spec,
    domNode: document.getElementById('swagger-ui'),
    // Deep links wrap each operation's path in a link inside its
    // expand button, which nests one control in another for assistive
    // technology (axe-core: nested-interactive).
    deepLinking: false,
    // The validator badge would send the document to a third party.
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    onComplete: () => status.replaceChildren(),
  });
  // Swagger UI's server list has a title beside it but no label; React
  // may render it again at any time.
  const root = document.getElementById('swagger-ui');
  const label = () => {
    const sel = root.querySelector('select#servers:not([aria-label])');
    if (sel) sel.setAttribute('aria-label', 'Server');
  };
  new MutationObserver(label).observe(root, { childList: true, subtree: true });
  label();
}

main();
