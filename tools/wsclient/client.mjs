// A real third-party client for Korrigo's subscriptions: graphql-ws over ws.
// The Go tests (server/graphqlws_node_test.go) run it when node is installed.
//
//   KORRIGO_WS_URL=ws://host/graphql KORRIGO_TOKEN=… KORRIGO_QUERY='subscription…' \
//   KORRIGO_VARIABLES='{"e":"…"}' KORRIGO_COUNT=2 node client.mjs
//
// It authenticates in connection_init ({authorization: "Bearer …"}), prints one
// JSON line per result ({"data":…} or {"errors":…}), and exits 0 after COUNT
// results. On a closed socket it prints {"closed":code,"reason":…} and exits 2.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const env = process.env;
const count = Number(env.KORRIGO_COUNT || '1');
const print = (v) => process.stdout.write(JSON.stringify(v) + '\n');

const client = createClient({
  url: env.KORRIGO_WS_URL,
  webSocketImpl: WebSocket,
  connectionParams: env.KORRIGO_TOKEN ? { authorization: `Bearer ${env.KORRIGO_TOKEN}` } : undefined,
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => print({ connected: true }),
    closed: (e) => {
      print({ closed: e && e.code, reason: e && e.reason });
      process.exit(2);
    },
  },
});

let seen = 0;
client.subscribe(
  { query: env.KORRIGO_QUERY, variables: JSON.parse(env.KORRIGO_VARIABLES || '{}') },
  {
    next: (result) => {
      print(result);
      seen += 1;
      if (seen >= count) {
        client.dispose();
        process.exit(0);
      }
    },
    error: (err) => {
      print({ errors: Array.isArray(err) ? err : [{ message: String((err && err.message) || err) }] });
      process.exit(3);
    },
    complete: () => {
      print({ complete: true });
      process.exit(seen >= count ? 0 : 4);
    },
  },
);

setTimeout(() => {
  print({ timeout: true });
  process.exit(5);
}, Number(env.KORRIGO_TIMEOUT_MS || '30000'));
