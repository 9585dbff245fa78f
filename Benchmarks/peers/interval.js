// node's setInterval on a period, for the firing-accuracy comparison: how late each callback runs against the
// ideal grid start + k * period (accumulated drift shows), in microseconds.
//   node interval.js [PERIOD_MS=100] [TICKS=50]
const period = Number(process.argv[2] || 100);
const ticks = Number(process.argv[3] || 50);
const micros = () => Number(process.hrtime.bigint() / 1000n);
const start = micros();
const late = [];
const timer = setInterval(() => {
  late.push(micros() - (start + (late.length + 1) * period * 1000));
  if (late.length < ticks) return;
  clearInterval(timer);
  const sorted = [...late].sort((a, b) => a - b);
  const at = (p) => sorted[Math.round(p * (sorted.length - 1))];
  const sum = (list) => list.reduce((a, b) => a + b, 0);
  const mean = sum(late) / late.length;
  const drift = sum(late.slice(-5)) / 5 - sum(late.slice(0, 5)) / 5;
  console.log(`impl=node-${process.version} grid_late_us: mean=${mean.toFixed(1)} p50=${at(0.5).toFixed(1)} ` +
    `p99=${at(0.99).toFixed(1)} max=${sorted[sorted.length - 1].toFixed(1)} min=${sorted[0].toFixed(1)} early=${late.filter((x) => x < 0).length} drift=${drift.toFixed(1)}`);
}, period);
