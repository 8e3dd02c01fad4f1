// The peer benchmark: firebase-admin's `sendEach` against the in-repo fake FCM, the way
// `scripts/bench` runs wolley-push. Run by `scripts/bench-node`; not part of the test suite.
//
//   node send-each.js KEY_JSON ENDPOINT TOKENS_FILE BATCHES_IN_FLIGHT
//
// firebase-admin hard-codes https://fcm.googleapis.com and Google's token endpoint, so two
// seams point it at the fake: `http2.connect` is redirected to ENDPOINT (its CA comes in
// through NODE_EXTRA_CA_CERTS), and `:scheme` is normalised (below), and the credential does the same JWT-bearer exchange against
// the key's token_uri that google-auth-library does against Google's. Prints one JSON line.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http2 = require('node:http2');

const [keyPath, endpoint, tokensPath, inFlightArg] = process.argv.slice(2);
const key = JSON.parse(fs.readFileSync(keyPath, 'utf8'));
const batchesInFlight = Number(inFlightArg || 4);

// firebase-admin sends `:scheme: https:` (Node's url.protocol, colon included); Google's front
// ends take it, the h2 crate under the fake refuses the stream, so the seam drops the colon.
const connect = http2.connect;
http2.connect = (authority, options, listener) => {
  if (String(authority).includes('fcm.googleapis.com')) authority = endpoint;
  const session = connect.call(http2, authority, options, listener);
  const request = session.request.bind(session);
  session.request = (headers, ...rest) =>
    request({ ...headers, ':scheme': String(headers[':scheme']).replace(/:$/, '') }, ...rest);
  return session;
};

const { initializeApp } = require('firebase-admin/app');
const { getMessaging } = require('firebase-admin/messaging');

function base64url(value) {
  return Buffer.from(value).toString('base64url');
}

/** The OAuth 2.0 JWT-bearer grant, as for a service account (RFC 7523). */
const credential = {
  async getAccessToken() {
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: key.private_key_id }));
    const claims = base64url(JSON.stringify({
      iss: key.client_email, aud: key.token_uri, iat: now, exp: now + 3600,
      scope: 'https://www.googleapis.com/auth/firebase.messaging',
    }));
    const signature = crypto.sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), key.private_key);
    const assertion = `${header}.${claims}.${base64url(signature)}`;
    const response = await fetch(key.token_uri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
    });
    if (!response.ok) throw new Error(`token endpoint answered ${response.status}`);
    return response.json();
  },
};

async function main() {
  const tokens = fs.readFileSync(tokensPath, 'utf8').split('\n').filter(Boolean);
  const messaging = getMessaging(initializeApp({ credential, projectId: key.project_id }));
  const batches = [];
  for (let i = 0; i < tokens.length; i += 500) {
    // The same message as wolley-push's save-location.
    batches.push(tokens.slice(i, i + 500).map((token) => ({
      token,
      data: { type: 'saveLocation', slot: '2026-12-02T23:00:00+09:00' },
      android: { priority: 'normal', ttl: 1800 * 1000, collapseKey: 'saveLocation' },
      apns: {
        headers: { 'apns-push-type': 'background', 'apns-priority': '5', 'apns-expiration': '1796221800',
          'apns-collapse-id': 'saveLocation' },
        payload: { aps: { contentAvailable: true, threadId: 'saveLocation' } },
      },
    })));
  }
  const started = process.hrtime.bigint();
  let sent = 0;
  let failed = 0;
  let next = 0;
  async function lane() {
    while (next < batches.length) {
      const response = await messaging.sendEach(batches[next++]);
      sent += response.successCount;
      failed += response.failureCount;
    }
  }
  await Promise.all(Array.from({ length: batchesInFlight }, lane));
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({
    sent, failed, batches_in_flight: batchesInFlight, secs,
    rate: Math.round(sent / secs), cpu_secs: (cpu.user + cpu.system) / 1e6,
    max_rss_kib: process.resourceUsage().maxRSS,
  }));
}

main().catch((error) => { console.error(error); process.exit(1); });
