// firebase-admin's sendEach against the in-repo fake FCM, for the "against firebase-admin" row
// of BENCHMARKS.md. Run by scripts/bench-node, which starts the fake and installs the package.
//
// The SDK hard-codes fcm.googleapis.com and Google's token endpoint, so this file points the
// SDK's HTTP/2 session at the fake (http2.connect) and hands it a credential that trades a JWT
// signed with the fake's key at the key's token_uri, as gcp_auth does for wolley-push.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http2 = require('http2');

const [endpoint, keyFile, count, batches] = process.argv.slice(2);
const key = JSON.parse(fs.readFileSync(keyFile, 'utf8'));

// The SDK sends `:scheme: https:` (the URL's protocol, colon included); h2 servers such as the
// fake's refuse that as malformed, so it is trimmed here.
const connect = http2.connect;
http2.connect = (url, ...rest) => {
  const session = connect(String(url).replace('https://fcm.googleapis.com', endpoint), ...rest);
  const request = session.request.bind(session);
  session.request = (headers, ...more) =>
    request({ ...headers, ':scheme': String(headers[':scheme']).replace(/:$/, '') }, ...more);
  return session;
};

const { initializeApp } = require('firebase-admin/app');
const { getMessaging } = require('firebase-admin/messaging');

function b64(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

const credential = {
  async getAccessToken() {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: key.client_email, scope: 'https://www.googleapis.com/auth/firebase.messaging', aud: key.token_uri, iat: now, exp: now + 3600 };
    const unsigned = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}`;
    const signature = crypto.createSign('RSA-SHA256').update(unsigned).sign(key.private_key).toString('base64url');
    const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: `${unsigned}.${signature}` });
    const answer = await fetch(key.token_uri, { method: 'POST', body });
    if (!answer.ok) throw new Error(`token endpoint ${key.token_uri}: ${answer.status} ${await answer.text()}`);
    const { access_token, expires_in } = await answer.json();
    return { access_token, expires_in };
  },
};

const messaging = getMessaging(initializeApp({ credential, projectId: key.project_id }));

function token(i) {
  return 'bench-device:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6hU0pA5oD3iG7bK2mX1zC9fV8nR4tY6uE0wQ3sL5jH7gP2dM1aZ'
    + 'dGVzdC1kZXZpY2U6QVBBOTFiRjN4OVFtWjFrVHE3THIydlljTjhzVzRl' + String(i).padStart(8, '0');
}

async function main() {
  const total = Number(count);
  const parallel = Number(batches);
  let next = 0;
  let sent = 0;
  let failed = 0;
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  // sendEach takes at most 500 messages; `parallel` calls run at once.
  async function lane() {
    while (next < total) {
      const from = next;
      next = Math.min(total, next + 500);
      const messages = [];
      for (let i = from; i < next; i++) {
        messages.push({ token: token(i + 1), data: { type: 'saveLocation' }, android: { priority: 'high' } });
      }
      const answer = await messaging.sendEach(messages);
      sent += answer.successCount;
      failed += answer.failureCount;
      if (answer.failureCount && failed === answer.failureCount) {
        console.error('first failure:', answer.responses.find((r) => !r.success).error.message);
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, lane));
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  const cpuSecs = (used.user + used.system) / 1e6;
  console.log(JSON.stringify({ parallel, sent, failed, wall, msg_per_s: Math.round(sent / wall), cpu_s: cpuSecs, us_per_msg: (cpuSecs * 1e6 / total).toFixed(1) }));
  process.exit(0);
}

main().catch((error) => { console.error(error); process.exit(1); });
