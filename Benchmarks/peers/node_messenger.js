// egg's messenger path with Node's own cluster IPC: a worker sends to the "agent" (another forked process) through
// the master, which answers back through the master (process.send, JSON over the IPC pipe), as egg-cluster routes
// messenger messages. One at a time (latency) and 64 in flight (throughput).
//   node node_messenger.js [MESSAGES=100000]
const cluster = require('cluster');
const MESSAGES = parseInt(process.argv[2] || '100000', 10);
const SINGLE = Math.max(1000, Math.floor(MESSAGES / 20));

if (cluster.isPrimary) {
  const agent = cluster.fork({ ROLE: 'agent' });
  const worker = cluster.fork({ ROLE: 'worker' });
  agent.on('message', (m) => { if (m.to === 'worker') worker.send(m); });
  worker.on('message', (m) => {
    if (m.to === 'agent') agent.send(m);
    else if (m.result) { console.log(m.result); agent.kill(); worker.kill(); }
  });
} else if (process.env.ROLE === 'agent') {
  process.on('message', (m) => process.send({ to: 'worker', action: 'pong', n: m.n }));
} else {
  const waiting = new Map();
  process.on('message', (m) => { const w = waiting.get(m.n); if (w) { waiting.delete(m.n); w(); } });
  const ping = (n) => new Promise((resolve) => { waiting.set(n, resolve); process.send({ to: 'agent', action: 'ping', n }); });
  (async () => {
    const latencies = [];
    let n = 0;
    for (let i = 0; i < SINGLE; i++) {
      const t = process.hrtime.bigint();
      await ping(++n);
      latencies.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    latencies.sort((a, b) => a - b);
    const p = (q) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))];
    const first = n + 1;
    n += MESSAGES;
    const began = process.hrtime.bigint();
    await Promise.all(Array.from({ length: 64 }, async (_, lane) => {
      for (let k = first + lane; k < first + MESSAGES; k += 64) await ping(k);
    }));
    const seconds = Number(process.hrtime.bigint() - began) / 1e9;
    process.send({ result: `node_one_at_a_time round_trips=${SINGLE} p50_us=${p(0.5).toFixed(0)} p99_us=${p(0.99).toFixed(0)}\n` +
      `node_64_in_flight round_trips=${MESSAGES} per_s=${(MESSAGES / seconds).toFixed(0)}` });
  })();
}
