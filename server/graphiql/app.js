// Korrigo's GraphiQL bootstrap, served from the binary like the rest of this
// folder (no CDN). Requests carry the session cookie of this origin and the
// X-Korrigo-Csrf header (cookie-authenticated requests must be non-simple).
(function () {
  'use strict';
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
