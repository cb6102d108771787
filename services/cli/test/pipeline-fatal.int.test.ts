// `npm start`'s pipeline (lib/pipeline.ts) fails fast and loud as the standalone services do: after a
// fatal error every /healthz (detector, sink, stage, API ops ports) answers 503 (the process has
// decided to die), and stop() is bounded by the shutdown deadline (8 s at most after a fatal error,
// here SHUTDOWN_TIMEOUT_MS 1 s): a step that never finishes makes it reject instead of hanging.
// The fatal error is a real one: the sink's ClickHouse table is gone, so its first write is refused.
// Shared Kafka and registry, embedded ClickHouse; own topic prefix, groups and database.
import { afterAll, describe, expect, it } from 'vitest';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { defaultRulesConfig } from '@tillwatch/rules';
import { deleteScopedTopics, randomId } from '@tillwatch/stream';
import { createContext, type Context } from '../src/lib/context.js';
import { provisionAll } from '../src/lib/provision.js';
import { startPipeline, type RunningPipeline } from '../src/lib/pipeline.js';
import { startSimulator } from '../src/lib/simulator.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const status = async (url: string) => (await fetch(`${url}/healthz`)).status;

let ctx: Context | undefined;
let db: TestClickHouse | undefined;
let pipeline: RunningPipeline | undefined;
let release: (() => void) | undefined;

afterAll(async () => {
  release?.();
  // The abandoned stop goes on once released; give it a moment to close the ops servers.
  await sleep(2_000);
  if (ctx) await deleteScopedTopics(ctx.kafka, ctx.topics);
  await db?.dispose();
}, 60_000);

describe('npm start pipeline: fatal error and bounded stop', () => {
  it('after a fatal error every /healthz is 503, and a stop that never finishes rejects at the deadline', async () => {
    const id = randomId();
    const env = {
      ...process.env,
      TOPIC_PREFIX: `pf-${id}.`,
      TOPIC_PARTITIONS: '1',
      DETECTOR_GROUP_ID: `pf-detector-${id}`,
      SINK_GROUP_ID: `pf-sink-${id}`,
      STAGE_GROUP_ID: `pf-stage-${id}`,
      LOG_LEVEL: 'silent',
    };
    ctx = createContext(env, 'pipeline-fatal');
    db = await createTestClickHouse();
    await provisionAll(ctx, db.ch);
    const fatal: string[] = [];
    pipeline = await startPipeline({
      ctx,
      ch: db.ch,
      rules: defaultRulesConfig(),
      api: { host: '127.0.0.1', port: 0 },
      opsPorts: { detector: 0, sink: 0, stage: 0, api: 0 },
      onFatal: (service) => fatal.push(service),
      shutdownTimeoutMs: 1_000,
    });
    const urls = Object.values(pipeline.opsUrls);
    expect(await Promise.all(urls.map(status))).toEqual(urls.map(() => 200));

    // The sink's table goes away (its rollup view first, which reads from it): its next write is a FatalWriteError.
    await db.ch.client.command({ query: `DROP VIEW IF EXISTS ${db.ch.table('terminal_sync_lag_minute_mv')}` });
    await db.ch.client.command({ query: `DROP TABLE ${db.ch.table('transactions')}` });
    const sim = await startSimulator(ctx, { terminals: 2, cards: 10, seed: 7, anomalyRate: 0, rate: 200, maxEvents: 20 });
    await sim.sim.done();
    await sim.stop();
    for (const deadline = Date.now() + 60_000; fatal.length === 0 && Date.now() < deadline; ) await sleep(200);
    expect(fatal).toContain('sink');
    expect(await Promise.all(urls.map(status))).toEqual(urls.map(() => 503));
    expect(pipeline.healthy()).toBe(false);

    // A detector stop that does not finish until released: stop() gives up at the deadline.
    const detector = pipeline.detector;
    const realStop = detector.stop.bind(detector);
    const released = new Promise<void>((r) => (release = r));
    detector.stop = () => released.then(realStop);
    const t0 = Date.now();
    await expect(pipeline.stop()).rejects.toThrow("the pipeline's stop did not finish within 1 s; exiting with work left");
    expect(Date.now() - t0).toBeLessThan(5_000);
  }, 180_000);
});
