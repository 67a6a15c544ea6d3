// Starts a sidecar (path in SIDECAR_BIN) on a free 127.0.0.1 port with a temp ini, waits until it
// answers PING (bounded), and stops it by pid. Shared by the ioredis tests.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const READY_MS = 10000;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    sock.setTimeout(500, () => { sock.destroy(); resolve(false); });
    sock.on('error', () => resolve(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d;
      // +PONG, or -NOAUTH when a password is set: either way it is serving.
      if (buf.includes('\r\n')) { sock.destroy(); resolve(buf[0] === '+' || buf[0] === '-'); }
    });
  });
}

async function startSidecar(ini = {}) {
  const bin = process.env.SIDECAR_BIN;
  if (!bin) throw new Error('SIDECAR_BIN is not set');
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-node-'));
  const sections = { server: [`listen = 127.0.0.1:${port}`], cache: [] };
  for (const [key, value] of Object.entries(ini)) {
    const [section, name] = key.includes('.') ? key.split('.') : ['server', key];
    (sections[section] = sections[section] || []).push(`${name} = ${value}`);
  }
  const text = Object.entries(sections).map(([s, lines]) => `[${s}]\n${lines.join('\n')}\n`).join('');
  const iniPath = path.join(dir, 'sidecar.ini');
  fs.writeFileSync(iniPath, text);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIDECAR_') || k === 'SIDECAR_BIN'));
  const child = spawn(bin, ['-c', iniPath], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const deadline = Date.now() + READY_MS;
  while (!(await ping(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`sidecar not ready on ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const code = await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      if (/AddressSanitizer|runtime error:|LeakSanitizer/.test(stderr)) throw new Error(`sanitizer report:\n${stderr}`);
      return code;
    },
  };
}

module.exports = { startSidecar };
