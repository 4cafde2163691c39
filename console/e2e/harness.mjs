// @ts-check
// Starts what the browser tests run against: the real host binary with demo
// data and its embedded MQTT broker, the station simulator for every demo
// station, and a fake Sparrow SMS gateway (so a test can sign a customer up
// by OTP). All on loopback ports chosen here; all stopped by `stop()`.
//
// Binaries come from the environment (cargo xtask test sets them):
// POWERBANK_BIN, STATION_SIM_BIN; plugins from REPO_ROOT/plugins/dist.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync, crc32 } from 'node:zlib';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEMO_ADMIN = { email: 'admin@powerbank.local', password: 'powerbank-demo-admin' };

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes.
 * @template T
 * @param {string} what
 * @param {() => Promise<T>} check
 * @param {number} [timeoutMs]
 * @returns {Promise<NonNullable<T>>}
 */
export async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return /** @type {NonNullable<T>} */ (value);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(200);
  }
}

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((res, rej) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => res(port));
    });
    server.on('error', rej);
  });
}

/** Sparrow SMS v2 as the host calls it: form-encoded POST /v2/sms/, JSON answer. */
async function fakeSparrow() {
  /** @type {{ to: string, text: string }[]} */
  const sent = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      if (req.method === 'POST' && req.url === '/v2/sms/') {
        sent.push({ to: form.get('to') ?? '', text: form.get('text') ?? '' });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ response_code: 200, response: 'queued' }));
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, sent, close: () => server.close() };
}

/** A plugins.toml like the repository's, with absolute paths (it lives in a temp dir). */
function pluginsManifest(/** @type {string} */ dir) {
  const original = readFileSync(join(REPO_ROOT, 'plugins.toml'), 'utf8');
  const text = original.replace(/^path = "([^"]+)"/gm, (_, p) => `path = ${JSON.stringify(join(REPO_ROOT, p))}`);
  const file = join(dir, 'plugins.toml');
  writeFileSync(file, text);
  return file;
}

/**
 * @param {string} name
 * @param {string} bin
 * @param {string[]} args
 * @param {string} logFile
 */
function start(name, bin, args, logFile) {
  const log = createWriteStream(logFile);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.on('error', (e) => console.error(`${name} (${bin}) did not start: ${e.message}`));
  child.on('exit', (code, signal) => {
    if (code !== null && code !== 0) console.error(`${name} exited with ${code}; see ${logFile}`);
    else if (signal && signal !== 'SIGTERM' && signal !== 'SIGINT') console.error(`${name} stopped by ${signal}`);
  });
  return child;
}

/** A tiny PNG (solid colour with a darker band), for KYC document uploads. */
export function documentPng(width = 240, height = 150, rgb = [70, 130, 180]) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      const band = y > height * 0.6 && y < height * 0.75 ? 0.5 : 1;
      raw[row + 1 + x * 3] = Math.round((rgb[0] ?? 0) * band);
      raw[row + 2 + x * 3] = Math.round((rgb[1] ?? 0) * band);
      raw[row + 3 + x * 3] = Math.round((rgb[2] ?? 0) * band);
    }
  }
  /** @param {string} type @param {Buffer} data */
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.writeUInt8(8, 8); // bit depth
  header.writeUInt8(2, 9); // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export async function startStack() {
  const hostBin = process.env.POWERBANK_BIN ?? join(REPO_ROOT, 'target/debug/powerbank');
  const simBin = process.env.STATION_SIM_BIN ?? join(REPO_ROOT, 'target/debug/powerbank-station-sim');
  const outDir = process.env.CONSOLE_E2E_OUT ?? join(REPO_ROOT, 'target/console-e2e');
  mkdirSync(outDir, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'powerbank-console-e2e-'));
  const plugins = pluginsManifest(dataDir);
  const sms = await fakeSparrow();
  const port = await freePort();
  const mqttPort = await freePort();
  const base = `http://127.0.0.1:${port}`;

  /** @type {import('node:child_process').ChildProcess[]} */
  const children = [];
  const stopAll = async () => {
    for (const c of children) c.kill(c === host ? 'SIGTERM' : 'SIGINT');
    sms.close();
    await Promise.all(
      children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.on('exit', r)))),
    );
  };
  const host = start(
    'powerbank',
    hostBin,
    [
      '--log-format', 'text', 'serve', '--demo',
      '--listen', `127.0.0.1:${port}`,
      '--mqtt-listen', `127.0.0.1:${mqttPort}`,
      '--data-dir', dataDir,
      '--plugins', plugins,
      // The plugins test edits plugins.toml and presses Reload: no watcher racing it.
      '--no-plugin-watch',
      // This harness runs the station simulator itself, with quick heartbeats.
      '--no-demo-stations',
      '--sparrow-url', sms.url, '--sparrow-token', 'e2e-token',
    ],
    join(outDir, 'host.log'),
  );
  children.push(host);
  try {
    return await arrange();
  } catch (e) {
    await stopAll();
    throw e;
  }

  async function arrange() {
  await waitFor('the host to answer', async () => (await fetch(`${base}/api/health`)).status > 0);

  const sim = start(
    'station simulator',
    simBin,
    ['--api', base, '--heartbeat-secs', '5', '--eject-delay-ms', '300'],
    join(outDir, 'station-sim.log'),
  );
  children.push(sim);
  const api = new Api(base, sms);
  const admin = await api.signInAdmin();
  const stations = await api.allStations();
  // Every simulated station has reported in over MQTT.
  await waitFor(
    'every demo station to report over MQTT',
    async () => {
      for (const s of stations) {
        const link = await api.json('GET', `/api/admin/stations/${s.serial_number}/link`, admin);
        if (!(link.traffic.messages_applied > 0)) return false;
      }
      return true;
    },
    60_000,
  );

  return {
    base,
    api,
    admin,
    dataDir,
    plugins,
    outDir,
    stop: stopAll,
    /** Asks the host to stop as systemd or Ctrl-C would; resolves with how it exited. */
    async terminateHost() {
      const exited = new Promise((r) => (host.exitCode !== null ? r(host.exitCode) : host.on('exit', (code) => r(code))));
      host.kill('SIGTERM');
      return exited;
    },
  };
  }
}

/** The API as a test uses it to arrange and check what the browser does. */
export class Api {
  /** @param {string} base @param {Awaited<ReturnType<typeof fakeSparrow>>} sms */
  constructor(base, sms) {
    this.base = base;
    this.sms = sms;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {string | null} [token]
   * @param {unknown} [body]
   * @returns {Promise<{ status: number, body: any }>}
   */
  async call(method, path, token = null, body = undefined) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  /** The body of a 2xx answer; throws otherwise. */
  async json(/** @type {string} */ method, /** @type {string} */ path, token = /** @type {string|null} */ (null), body = /** @type {unknown} */ (undefined)) {
    const r = await this.call(method, path, token, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async signInAdmin() {
    const body = await waitFor('the demo operator to sign in', async () => {
      const r = await this.call('POST', '/api/admin/login', null, DEMO_ADMIN);
      return r.status === 200 ? r.body : null;
    });
    return /** @type {string} */ (body.access_token);
  }

  async allStations() {
    /** @type {any[]} */
    const all = [];
    let cursor = '';
    for (;;) {
      const page = await this.json('GET', `/api/stations?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      all.push(...page.results);
      if (!page.next_cursor) return all;
      cursor = page.next_cursor;
    }
  }

  /** Signs a customer up by OTP (read from the fake SMS gateway); returns their access token. */
  async registerCustomer(/** @type {string} */ phone) {
    const before = this.sms.sent.length;
    await this.json('POST', '/api/auth/get-otp', null, { identifier: phone, purpose: 'register' });
    const sms = await waitFor('the OTP SMS', async () => this.sms.sent.slice(before).find((m) => phone.endsWith(m.to)));
    const code = /\b(\d{6})\b/.exec(sms.text)?.[1];
    if (!code) throw new Error(`no code in ${sms.text}`);
    const verified = await this.json('POST', '/api/auth/verify-otp', null, { identifier: phone, otp: code, purpose: 'register' });
    const registered = await this.json('POST', '/api/auth/register', null, { verification_token: verified.verification_token });
    return /** @type {string} */ (registered.access_token);
  }

  /** A customer's pending KYC submission with two document images; returns its id. */
  async submitKyc(/** @type {string} */ token) {
    const upload = async (/** @type {number[]} */ rgb) => {
      const form = new FormData();
      form.append('purpose', 'kyc');
      form.append('file', new Blob([documentPng(240, 150, rgb)], { type: 'image/png' }), 'document.png');
      const r = await fetch(`${this.base}/api/upload`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
      if (r.status !== 201) throw new Error(`upload: HTTP ${r.status} ${await r.text()}`);
      return (await r.json()).id;
    };
    const front = await upload([70, 130, 180]);
    const back = await upload([200, 120, 60]);
    const kyc = await this.json('POST', '/api/auth/kyc', token, {
      document_type: 'citizenship',
      document_number: '27-01-75-12345',
      front_upload_id: front,
      back_upload_id: back,
    });
    return /** @type {number} */ (kyc.id);
  }
}
