// The agent cases of `npm run bench`: the protocol path (AgentClient → unix socket → msb-agentd in
// its own process) against the same work done in-process with spawnSession().
//
//   rtt     request → core.exec.started → core.exec.exited for /bin/true, p50/p99, interleaved
//           batches against spawnSession() → exited in this process.
//   stream  `head -c N /dev/zero` (pipes) read through the protocol against in-process pipe mode,
//           and the C relay (c/relay.c: pipe -> unix socket -> reader, two copies through user
//           space, no protocol) as what any relaying agent pays at the least on this machine.
//   scale   SESSIONS idle PTY sessions (`sleep 3600`) in one agent: RSS and threads at 0, 1 and
//           SESSIONS sessions, and a new exec's round trip with them alive against the idle agent
//           (idle batches before opening and after closing them).
//   slow    client A's `yes` is not read for STALL seconds (its stdout paused, so its socket
//           stops being read): agent RSS growth, and client B's round-trip p99 meanwhile against
//           B's unloaded p99 (windows before and after the stall).
//
// Every case prints rows and targets through the callbacks of bench/index.mjs; every figure also
// goes into its JSON.

import { setTimeout as sleep } from 'node:timers/promises';

import { spawnSession } from '../dist/index.js';
import { fdCount, startAgent } from './agent-process.mjs';
import { interleave, latency, median, perRoundRatios, stats } from './stats.mjs';
import { HEAD_ARGS } from './transfer.mjs';

async function agentRoundTrip(client) {
  const t0 = performance.now();
  const p = await client.exec({ cmd: '/bin/true' });
  await p.exited;
  return performance.now() - t0;
}

async function localRoundTrip() {
  const t0 = performance.now();
  const s = await spawnSession({ cmd: '/bin/true' });
  await s.exited;
  return performance.now() - t0;
}

async function roundTrips(fn, n) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await fn());
  return xs;
}

async function roundTripsFor(fn, seconds) {
  const xs = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) xs.push(await fn());
  return xs;
}

async function agentStream(client, n) {
  const t0 = performance.now();
  const p = await client.exec({ cmd: 'head', args: HEAD_ARGS(n) });
  let bytes = 0;
  p.stdout.on('data', (c) => (bytes += c.length));
  p.stderr.resume();
  await p.exited;
  return { bytes, ms: performance.now() - t0 };
}

/**
 * The C relay, started through spawnSession: a fork by execFileSync would write-protect this
 * process's pages and tax the in-process runs that share it (see worker.mjs).
 */
async function relayStream(bin, n) {
  const s = await spawnSession({ cmd: bin, args: [String(n)], stdin: 'ignore' });
  let out = '';
  s.stdout.on('data', (c) => (out += c));
  s.stderr.on('data', (c) => process.stderr.write(c));
  const exit = await s.exited;
  if (exit.code !== 0) throw new Error(`relay exited with ${JSON.stringify(exit)}`);
  const [bytes, ns] = out.trim().split(/\s+/).map(Number);
  return { bytes, ms: ns / 1e6 };
}

async function localStream(n) {
  const t0 = performance.now();
  const s = await spawnSession({ cmd: 'head', args: HEAD_ARGS(n) });
  let bytes = 0;
  s.stdout.on('data', (c) => (bytes += c.length));
  s.stderr.resume();
  await s.exited;
  return { bytes, ms: performance.now() - t0 };
}

const ms = (x) => x.toFixed(2);

/**
 * Runs the selected agent cases. `rows`, `target` and `cases` are bench/index.mjs's table rows,
 * target recorder and JSON cases object.
 */
export async function runAgentCases({ select, rounds, pipeBytes, sessions, stallSeconds, rttPerRound, relayBin, log, rows, target, cases }) {
  if (select.has('rtt')) {
    log(`agent round trip: ${rounds} rounds × ${rttPerRound} execs per implementation`);
    const agent = await startAgent();
    try {
      const client = await agent.connect();
      await roundTrips(() => agentRoundTrip(client), 20);
      await roundTrips(localRoundTrip, 20);
      await roundTrips(() => client.ping(), 20);
      // core.ping → core.pong is the socket's own round trip: the least any protocol exec can add
      // to the in-process spawn (request and exited each cross the socket once).
      const impls = {
        'AgentClient → msb-agentd (unix socket)': () => agentRoundTrip(client),
        'spawnSession in-process': localRoundTrip,
        'core.ping round trip (socket floor)': () => client.ping(),
      };
      const batches = await interleave(impls, rounds, (fn) => roundTrips(fn, rttPerRound));
      await client.close();
      const group = 'Agent round trip /bin/true (request → started → exited)';
      const g = {};
      for (const [impl, bs] of Object.entries(batches)) {
        g[impl] = { ...latency(bs.flat()), p50PerRound: stats(bs.map((b) => latency(b).p50)) };
      }
      const [a, l, ping] = Object.values(g);
      a.ratioToInProcessP50 = +(a.p50 / l.p50).toFixed(3);
      a.ratioToInProcessP99 = +(a.p99 / l.p99).toFixed(3);
      ping.floorRatioP50 = +((l.p50 + ping.p50) / l.p50).toFixed(3);
      const ratioText = (v) =>
        v === a ? `${a.ratioToInProcessP50.toFixed(2)}× in-process (p50)` : v === ping ? `floor ${ping.floorRatioP50.toFixed(2)}× (in-process + ping)` : '1.00×';
      for (const [impl, v] of Object.entries(g)) {
        const r = v.p50PerRound;
        rows.push({ group, impl, value: `${ms(v.p50)} / ${ms(v.p99)}`, unit: 'ms p50 / p99', range: `p50 per round ${ms(r.min)}–${ms(r.max)}`, ratio: ratioText(v) });
      }
      cases[group] = g;
      target('Agent round trip p50 ≤ 1.3 × in-process spawn', a.ratioToInProcessP50, 1.3, a.ratioToInProcessP50 <= 1.3);
    } finally {
      await agent.stop();
    }
  }

  if (select.has('stream')) {
    log(`agent streaming: ${pipeBytes} bytes × ${rounds} rounds per implementation`);
    const agent = await startAgent();
    try {
      const client = await agent.connect();
      const impls = {
        'AgentClient ← msb-agentd (unix socket)': () => agentStream(client, pipeBytes),
        'spawnSession pipes in-process': () => localStream(pipeBytes),
        'C relay (pipe → unix socket → reader)': () => relayStream(relayBin, pipeBytes),
      };
      const samples = await interleave(impls, rounds, (fn) => fn(), { warmup: 1 });
      await client.close();
      const group = `Agent streaming (${pipeBytes / 1e6} MB stdout through the protocol)`;
      const g = {};
      for (const [impl, runs] of Object.entries(samples)) {
        const short = runs.filter((r) => r.bytes !== pipeBytes).length;
        if (short) log(`agent streaming: ${impl} came up short in ${short} runs`);
        g[impl] = { MBps: stats(runs.map((r) => r.bytes / 1e6 / (r.ms / 1000))), bytes: runs.map((r) => r.bytes), ms: runs.map((r) => r.ms) };
      }
      const [a, l] = [g['AgentClient ← msb-agentd (unix socket)'], g['spawnSession pipes in-process']];
      for (const v of Object.values(g)) {
        if (v === l) continue;
        v.ratioToInProcess = +(v.MBps.median / l.MBps.median).toFixed(3);
        v.perRoundRatioToInProcess = perRoundRatios(v.MBps.samples, l.MBps.samples);
      }
      for (const [impl, v] of Object.entries(g)) {
        const r = v.perRoundRatioToInProcess;
        const ratio = v === l ? '1.00×' : `${v.ratioToInProcess.toFixed(2)}× in-process (rounds ${r.min.toFixed(2)}–${r.max.toFixed(2)})`;
        rows.push({ group, impl, value: v.MBps.median.toFixed(0), unit: 'MB/s', range: `${v.MBps.min.toFixed(0)}–${v.MBps.max.toFixed(0)}`, ratio });
      }
      cases[group] = g;
      target('Agent streaming ≥ 0.7 × in-process pipe mode', a.ratioToInProcess, 0.7, a.ratioToInProcess >= 0.7);
    } finally {
      await agent.stop();
    }
  }

  if (select.has('scale')) {
    log(`scale: ${sessions} idle PTY sessions in one agent`);
    const agent = await startAgent();
    try {
      cases[`Scale: ${sessions} idle PTY sessions`] = await scaleCase(agent, { sessions, rttPerRound, log, rows, target });
    } finally {
      await agent.stop();
    }
  }

  if (select.has('slow')) {
    log(`slow consumer: a client stops reading \`yes\` for ${stallSeconds} s`);
    const agent = await startAgent();
    try {
      cases[`Slow consumer (${stallSeconds} s stall)`] = await slowConsumerCase(agent, { stallSeconds, log, rows, target });
    } finally {
      await agent.stop();
    }
  }
}

/** Waits until the agent's reader thread has lingered out, so "0 sessions" means none at all. */
async function settle(agent, ms = 600) {
  await sleep(ms);
  return { ...agent.status(), fds: fdCount(agent.pid) };
}

async function scaleCase(agent, { sessions, rttPerRound, log, rows, target }) {
  const client = await agent.connect();
  await roundTrips(() => agentRoundTrip(client), 20);
  const at0 = await settle(agent);
  const idleBefore = await roundTrips(() => agentRoundTrip(client), rttPerRound);

  const execs = [];
  const open = async () => {
    const p = await client.exec({ cmd: 'sleep', args: ['3600'], tty: true });
    p.stdout.resume();
    execs.push(p);
  };
  await open();
  const at1 = await settle(agent);
  const t0 = performance.now();
  // 32 requests in flight: a host opening many sessions at once, without one huge burst.
  let next = 1;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < sessions) {
        next++;
        await open();
      }
    }),
  );
  const openSeconds = (performance.now() - t0) / 1000;
  const atN = await settle(agent, 1000);
  const busy = await roundTrips(() => agentRoundTrip(client), rttPerRound);
  const atNAfter = { ...agent.status(), fds: fdCount(agent.pid) };
  log(`scale: ${execs.length} sessions opened in ${openSeconds.toFixed(1)} s; RSS ${atN.rssMiB} MiB, ${atN.threads} threads`);

  // Closing the connection ends its sessions (SIGHUP); wait for the agent to be back to idle.
  await client.close();
  await Promise.allSettled(execs.map((p) => p.exited));
  const client2 = await agent.connect();
  const deadline = performance.now() + 20_000;
  while (fdCount(agent.pid) > at0.fds + 8 && performance.now() < deadline) await sleep(100);
  const idleAfter = await roundTrips(() => agentRoundTrip(client2), rttPerRound);
  const atEnd = await settle(agent);
  await client2.close();

  const idle = latency([...idleBefore, ...idleAfter]);
  const loaded = latency(busy);
  const ratio = +(loaded.p50 / idle.p50).toFixed(3);
  const group = `Scale: ${sessions} idle PTY sessions in one agent`;
  rows.push({ group, impl: 'agent RSS at 0 / 1 / N sessions', value: `${at0.rssMiB} / ${at1.rssMiB} / ${atN.rssMiB}`, unit: 'MiB', range: `after closing: ${atEnd.rssMiB}`, ratio: '' });
  rows.push({ group, impl: 'agent threads at 0 / 1 / N sessions', value: `${at0.threads} / ${at1.threads} / ${atN.threads}`, unit: 'threads', range: `fds ${at0.fds} / ${at1.fds} / ${atN.fds}`, ratio: '' });
  rows.push({ group, impl: 'new exec round trip, idle agent', value: `${ms(idle.p50)} / ${ms(idle.p99)}`, unit: 'ms p50 / p99', range: `${idle.n} execs (before and after)`, ratio: '1.00×' });
  rows.push({ group, impl: `new exec round trip, ${sessions} sessions alive`, value: `${ms(loaded.p50)} / ${ms(loaded.p99)}`, unit: 'ms p50 / p99', range: `${loaded.n} execs`, ratio: `${ratio.toFixed(2)}× idle (p50)` });
  const threadsIndependent = atN.threads <= at1.threads;
  target(`${sessions} PTY sessions: thread count independent of sessions (N vs 1)`, `${at1.threads} → ${atN.threads}`, 'equal', threadsIndependent);
  target(`${sessions} PTY sessions: agent RSS ≤ 200 MiB`, atN.rssMiB, 200, atN.rssMiB <= 200);
  target(`${sessions} PTY sessions: new-exec round trip p50 ≤ 2 × idle`, ratio, 2, ratio <= 2);
  return { sessions, openSeconds: +openSeconds.toFixed(2), at0, at1, atN, atNAfter, atEnd, idle, loaded, ratioP50: ratio, idleBefore: latency(idleBefore), idleAfter: latency(idleAfter) };
}

async function slowConsumerCase(agent, { stallSeconds, log, rows, target }) {
  const a = await agent.connect();
  const b = await agent.connect();
  const rtt = () => agentRoundTrip(b);
  await roundTrips(rtt, 20);
  const window = Math.max(2, stallSeconds / 2);
  const before = await roundTripsFor(rtt, window);
  const base = await settle(agent, 200);

  const p = await a.exec({ cmd: 'yes' });
  // Never read: ExecOutput buffers its high-water mark, then the client stops reading the socket.
  p.stdout.pause();
  p.stderr.resume();
  const rss = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      rss.push(agent.status().rssMiB);
      await sleep(100);
    }
  })();
  const during = await roundTripsFor(rtt, stallSeconds);
  sampling = false;
  await sampler;
  const stalled = agent.status();
  const buffered = p.stdout.readableLength;

  let drained = 0;
  p.stdout.on('data', (c) => (drained += c.length));
  p.kill('SIGKILL');
  p.stdout.resume();
  await p.exited;
  const after = await roundTripsFor(rtt, window);
  await a.close();
  await b.close();

  const growth = +(Math.max(...rss) - base.rssMiB).toFixed(1);
  const unloaded = latency([...before, ...after]);
  const loaded = latency(during);
  const ratio = +(loaded.p99 / unloaded.p99).toFixed(3);
  log(`slow consumer: RSS ${base.rssMiB} → max ${Math.max(...rss)} MiB; ${buffered} B buffered in the client, ${drained} B drained after`);
  const group = `Slow consumer: \`yes\` unread for ${stallSeconds} s`;
  rows.push({ group, impl: 'agent RSS before / max during stall', value: `${base.rssMiB} / ${Math.max(...rss)}`, unit: 'MiB', range: `growth ${growth} MiB`, ratio: '' });
  rows.push({ group, impl: 'other client round trip, unloaded', value: `${ms(unloaded.p50)} / ${ms(unloaded.p99)}`, unit: 'ms p50 / p99', range: `${unloaded.n} execs (before and after)`, ratio: '1.00×' });
  rows.push({ group, impl: 'other client round trip, during stall', value: `${ms(loaded.p50)} / ${ms(loaded.p99)}`, unit: 'ms p50 / p99', range: `${loaded.n} execs`, ratio: `${ratio.toFixed(2)}× unloaded (p99)` });
  target('Slow consumer: agent RSS growth ≤ 64 MiB', growth, 64, growth <= 64);
  target('Slow consumer: other client round trip p99 ≤ 2 × unloaded p99', ratio, 2, ratio <= 2);
  return { base, stalled, rssSamplesMiB: rss, growthMiB: growth, clientBufferedBytes: buffered, drainedBytes: drained, unloaded, loaded, ratioP99: ratio, before: latency(before), after: latency(after), medianRssMiB: median(rss) };
}
