// ioredis against the sidecar, the everyday patterns on the data types: a hash user profile, a
// producer/consumer queue with BRPOP across two connections, an LPUSH + LTRIM recent-activity
// list, a ZADD/ZREVRANGE/ZINCRBY leaderboard, a sliding-window rate limiter in a pipeline, a
// WATCH/MULTI balance transfer and a pub/sub round trip.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { startSidecar } = require('./sidecar');

let sc;
let redis;
const opts = () => ({ host: '127.0.0.1', port: sc.port, maxRetriesPerRequest: 1 });

test.before(async () => {
  sc = await startSidecar();
  redis = new Redis(opts());
});

test.after(async () => {
  redis.disconnect();
  assert.equal(await sc.stop(), 0);
});

test.beforeEach(async () => { await redis.flushall(); });

test('hash user profile', async () => {
  assert.equal(await redis.hset('user:7', { name: 'Ada', plan: 'pro', logins: 0 }), 3);
  assert.equal(await redis.hincrby('user:7', 'logins', 1), 1);
  assert.deepEqual(await redis.hgetall('user:7'), { name: 'Ada', plan: 'pro', logins: '1' });
  assert.deepEqual(await redis.hmget('user:7', 'name', 'nope'), ['Ada', null]);
  assert.equal(await redis.hdel('user:7', 'plan'), 1);
  assert.equal(await redis.hlen('user:7'), 2);
  await assert.rejects(redis.get('user:7'), /WRONGTYPE Operation against a key holding the wrong kind of value/);
});

test('producer/consumer queue with BRPOP across two connections', async () => {
  const consumer = new Redis(opts());
  const got = [];
  const consuming = (async () => {
    for (let i = 0; i < 3; i++) got.push(await consumer.brpop('jobs', 5));
  })();
  await new Promise((r) => setTimeout(r, 50));
  for (const job of ['a', 'b', 'c']) await redis.lpush('jobs', job);
  await consuming;
  assert.deepEqual(got, [['jobs', 'a'], ['jobs', 'b'], ['jobs', 'c']]);
  assert.equal(await consumer.brpop('jobs', 0.1), null); // timeout: nil
  consumer.disconnect();
});

test('recent-activity list with LPUSH + LTRIM', async () => {
  for (let i = 0; i < 15; i++) await redis.multi().lpush('recent', `e${i}`).ltrim('recent', 0, 4).exec();
  assert.deepEqual(await redis.lrange('recent', 0, -1), ['e14', 'e13', 'e12', 'e11', 'e10']);
});

test('leaderboard with ZADD, ZINCRBY, ZREVRANGE', async () => {
  await redis.zadd('lb', 10, 'ada', 20, 'bob', 15, 'cy');
  assert.equal(await redis.zincrby('lb', 7, 'ada'), '17');
  assert.deepEqual(await redis.zrevrange('lb', 0, -1, 'WITHSCORES'), ['bob', '20', 'ada', '17', 'cy', '15']);
  assert.equal(await redis.zrevrank('lb', 'cy'), 2);
  assert.equal(await redis.zscore('lb', 'ada'), '17');
});

test('sliding-window rate limiter in a pipeline', async () => {
  const attempt = async (t) => {
    const r = await redis.pipeline()
      .zremrangebyscore('rl', 0, t - 1000).zadd('rl', t, `r${t}`).zcard('rl').pexpire('rl', 1000).exec();
    for (const [err] of r) assert.equal(err, null);
    return r[2][1] <= 3;
  };
  const now = 5000000;
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await attempt(now + i));
  assert.deepEqual(results, [true, true, true, false, false]);
  assert.equal(await attempt(now + 5000), true);
});

test('WATCH/MULTI balance transfer, retried after a concurrent write', async () => {
  await redis.mset('acct:a', 100, 'acct:b', 0);
  const other = new Redis(opts());
  let attempts = 0;
  for (;;) {
    attempts++;
    await redis.watch('acct:a', 'acct:b');
    const a = Number(await redis.get('acct:a'));
    if (attempts === 1) await other.incrby('acct:a', 50); // someone else writes in between
    const res = await redis.multi().set('acct:a', a - 30).incrby('acct:b', 30).exec();
    if (res !== null) break;
    assert.ok(attempts < 5, 'transfer never succeeded');
  }
  assert.equal(attempts, 2);
  assert.deepEqual(await redis.mget('acct:a', 'acct:b'), ['120', '30']);
  other.disconnect();
});

test('pub/sub round trip', async () => {
  const sub = new Redis(opts());
  const received = new Promise((resolve) => {
    sub.on('message', (channel, message) => resolve([channel, message]));
    sub.on('pmessage', () => {});
  });
  assert.equal(await sub.subscribe('news'), 1);
  assert.equal(await redis.publish('news', 'hello'), 1);
  assert.deepEqual(await received, ['news', 'hello']);
  assert.equal(await redis.publish('nobody', 'x'), 0);
  sub.disconnect();
});
