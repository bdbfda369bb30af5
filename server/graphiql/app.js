// Korrigo's GraphiQL bootstrap, served from the binary like the rest of this
// folder (no CDN). Requests carry the session cookie of this origin and the
// X-Korrigo-Csrf header (cookie-authenticated requests must be non-simple).
(function () {
  'use strict';
  // GraphiQL's dialogs lock page scrolling with a <style> element that
  // react-remove-scroll-bar appends to <head>; its webpack build reads the
  // nonce from a webpack global we cannot set from outside, so the CSP (style
  // nonce only, no 'unsafe-inline') would block it. Give style elements this
  // page's own scripts append to <head> the page's nonce.
  var nonce = document.currentScript && document.currentScript.nonce;
  if (nonce) {
    var append = document.head.appendChild;
    document.head.appendChild = function (node) {
      if (node instanceof HTMLStyleElement && !node.nonce) {
        node.setAttribute('nonce', nonce);
      }
      return append.call(this, node);
    };
  }
  var fetcher = GraphiQL.createFetcher({
    url: new URL('/graphql', window.location.href).toString(),
    headers: { 'X-Korrigo-Csrf': '1' },
  });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    defaultQuery: '# Korrigo API explorer. The schema is public; data needs a session:\n' +
      '# sign in with the login mutation (it sets the session cookie), then query.\n' +
      '#\n# mutation { login(email: "you@school.example", password: "…") { expiresAt } }\n\n{\n  me {\n    name\n    role\n  }\n}\n',
  }));
})();
