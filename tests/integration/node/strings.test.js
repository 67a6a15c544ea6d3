// ioredis (the Node client) against the sidecar: connection handshake (ioredis's INFO ready
// check), the everyday string and keyspace patterns, pipelines, scanStream, SELECT and AUTH.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { startSidecar } = require('./sidecar');

let sc;
let redis;

test.before(async () => {
  sc = await startSidecar({ requirepass: 's3cret' });
  redis = new Redis({ host: '127.0.0.1', port: sc.port, password: 's3cret', maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect(); // ioredis runs INFO and waits for loading:0
});

test.after(async () => {
  redis.disconnect();
  assert.equal(await sc.stop(), 0);
});

test.beforeEach(async () => { await redis.flushall(); });

test('cache-aside with SET EX and GET', async () => {
  assert.equal(await redis.get('user:1'), null);
  assert.equal(await redis.set('user:1', JSON.stringify({ name: 'ada' }), 'EX', 60), 'OK');
  assert.deepEqual(JSON.parse(await redis.get('user:1')), { name: 'ada' });
  const ttl = await redis.ttl('user:1');
  assert.ok(ttl > 0 && ttl <= 60, `ttl ${ttl}`);
  assert.equal(await redis.setex('s', 10, 'v'), 'OK');
  assert.equal(await redis.set('lock', 'me', 'NX', 'EX', 5), 'OK');
  assert.equal(await redis.set('lock', 'you', 'NX', 'EX', 5), null);
});

test('counters and a pipelined rate limiter', async () => {
  assert.equal(await redis.incr('hits'), 1);
  assert.equal(await redis.incrby('hits', 9), 10);
  assert.equal(await redis.decr('hits'), 9);
  assert.equal(await redis.incrbyfloat('f', '1.5'), '1.5');
  const results = [];
  for (let i = 0; i < 5; i++) {
    const r = await redis.pipeline().incr('rl:1').expire('rl:1', 60).exec();
    results.push(r[0][1]);
    assert.deepEqual(r[1], [null, 1]);
  }
  assert.deepEqual(results, [1, 2, 3, 4, 5]);
  await assert.rejects(redis.incr('f'), /ERR value is not an integer or out of range/);
});

test('scanStream sees every key', async () => {
  const pipe = redis.pipeline();
  for (let i = 0; i < 2000; i++) pipe.set(`scan:${i}`, i);
  pipe.set('other', 1);
  await pipe.exec();
  const seen = new Set();
  await new Promise((resolve, reject) => {
    const stream = redis.scanStream({ match: 'scan:*', count: 100 });
    stream.on('data', (keys) => keys.forEach((k) => seen.add(k)));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  assert.equal(seen.size, 2000);
});

test('mget, mset, select isolation, type and unknown commands', async () => {
  assert.equal(await redis.mset({ a: '1', b: '2' }), 'OK');
  assert.deepEqual(await redis.mget('a', 'b', 'nope'), ['1', '2', null]);
  assert.equal(await redis.type('a'), 'string');
  const db1 = new Redis({ host: '127.0.0.1', port: sc.port, password: 's3cret', db: 1, maxRetriesPerRequest: 1 });
  assert.equal(await db1.get('a'), null);
  await db1.set('a', 'one');
  assert.equal(await redis.get('a'), '1');
  db1.disconnect();
  await assert.rejects(redis.call('NOSUCHCMD', 'x'), /ERR unknown command 'NOSUCHCMD', with args beginning with: 'x'/);
  assert.equal(await redis.ping(), 'PONG'); // the connection stays open
});

test('AUTH: wrong password refused with Redis\'s error, the right one accepted', async () => {
  const anon = new Redis({ host: '127.0.0.1', port: sc.port, enableReadyCheck: false, maxRetriesPerRequest: 1 });
  anon.on('error', () => {});
  await assert.rejects(anon.get('a'), /NOAUTH Authentication required/);
  await assert.rejects(anon.auth('nope'), /WRONGPASS invalid username-password pair or user is disabled/);
  assert.equal(await anon.auth('default', 's3cret'), 'OK');
  assert.equal(await anon.set('a', 'ok'), 'OK');
  anon.disconnect();
});
