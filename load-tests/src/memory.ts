// Load test (iii): detector memory with 100,000 terminals and 1,000,000 cards live. The detector
// runs as its own process (the real CLI); its RSS and heap are read from its /metrics endpoint
// after every event is processed.
//   npm run load:memory -- [terminals=100000] [cards=1000000] [events=1200000]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createFleet } from '@tillwatch/simulator';
import { deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import type { Transaction } from '@tillwatch/schemas';
import { committedEnd, mib, publish, sleep, writeResult } from './common.js';

const [terminalsArg, cardsArg, eventsArg] = process.argv.slice(2);
const TERMINALS = Number(terminalsArg ?? 100_000);
const CARDS = Number(cardsArg ?? 1_000_000);
const N = Number(eventsArg ?? 1_200_000);
const cli = fileURLToPath(new URL('../../services/cli/bin/tillwatch.js', import.meta.url));

const { kafka, registry } = testKafka('load-memory');
const prefix = randomId('mem');
const topics = await provisionScopedTopics(kafka, registry, 6, prefix);
try {
  const fleet = createFleet({ terminals: TERMINALS, cards: CARDS, seed: 9, anomalyRate: 0.002 });
  const events: Transaction[] = [];
  let now = Date.UTC(2026, 0, 5, 9);
  // Cards are drawn at random; 1.2M draws over 1M cards leave ~70% of them live at least once.
  while (events.length < N) {
    now += 5;
    for (const e of fleet.next(now)) events.push(e);
  }
  const liveCards = new Set(events.map((e) => e.card_token)).size;
  const liveTerminals = new Set(events.map((e) => e.terminal_id)).size;
  console.error(`publishing ${events.length} events: ${liveTerminals} terminals, ${liveCards} cards...`);
  await publish(kafka, registry, topics.transactions, events);
  events.length = 0;

  const groupId = randomId('det');
  const port = 19464;
  const child = spawn(process.execPath, ['--max-old-space-size=8192', cli, 'detector'], {
    env: { ...process.env, TOPIC_PREFIX: prefix, DETECTOR_GROUP_ID: groupId, HTTP_PORT: String(port), LOG_LEVEL: 'warn', DETECTOR_WALL_CLOCK_TIMERS: 'false' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const t0 = performance.now();
  while (!(await committedEnd(kafka, groupId, topics.transactions))) await sleep(500);
  const seconds = (performance.now() - t0) / 1000;
  await sleep(3000); // let a GC cycle settle
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(metrics)?.[1] ?? NaN);
  const rss = metric('tillwatch_process_resident_memory_bytes');
  const heap = metric('tillwatch_nodejs_heap_size_used_bytes');
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const result = {
    events: N,
    terminals: liveTerminals,
    cards: liveCards,
    processingSeconds: Math.round(seconds),
    rssMiB: mib(rss),
    heapUsedMiB: mib(heap),
    bytesPerTerminalAndCard: Math.round(heap / (liveTerminals + liveCards)),
  };
  console.log(JSON.stringify(result, null, 2));
  console.error(`written ${writeResult('memory', result)}`);
} finally {
  await deleteScopedTopics(kafka, topics);
}
