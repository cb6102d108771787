// The pipeline `npm start` runs in one process: detector and sink on the context's topics, their
// ops endpoints (/metrics /healthz /readyz), and the alert API sharing the process's ClickHouse
// handle (one process owns an embedded data path), its live stream fed by the detector's committed
// alerts. Built and started here; the start command adds the stack, provisioning, the simulator
// and the console, and the end-to-end test drives it through the API. As the standalone services
// (createServiceLifecycle): every /healthz answers 503 from the first fatal error on (the process
// has decided to die), and stop() is bounded by SHUTDOWN_TIMEOUT_MS (8 s at most after a fatal
// error): past it, it rejects (work was left) and the owner exits non-zero.
import { createMemoryAlertFeed, startApi, type RunningApi } from '@tillwatch/api';
import type { ClickHouse } from '@tillwatch/clickhouse';
import { serviceConfig } from '@tillwatch/config';
import { createDetector, createRulesMetrics, type Detector } from '@tillwatch/detector';
import type { RulesConfig } from '@tillwatch/rules';
import { defaultGroupId, type Alert } from '@tillwatch/schemas';
import { createSink, type Sink } from '@tillwatch/sink';
import { createStage, createStageMetrics, type Stage } from '@tillwatch/stage-service';
import { FATAL_STOP_TIMEOUT_MS } from '@tillwatch/stream';
import { createDetectorMetrics, createOpsServer, createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import type { Context } from './context.js';

export interface PipelineOptions {
  ctx: Context;
  ch: ClickHouse;
  rules: RulesConfig;
  /** Where the API listens (port 0 = any free port). */
  api: { host?: string; port: number };
  /** Ops endpoints of the detector and the sink on 127.0.0.1, and the API's /metrics port (default API_OPS_PORT) (0 = any free port). */
  opsPorts: { detector: number; sink: number; api?: number; stage?: number };
  /** The detector's and the second stage's alerts, once committed. */
  onAlerts?: (alerts: Alert[]) => void;
  /** An error no retry cures in the detector or the sink: the owner should stop and exit non-zero. */
  onFatal: (service: 'detector' | 'sink' | 'stage', error: Error) => void;
  /** How long stop() may take (default SHUTDOWN_TIMEOUT_MS of the context's env, 25 s); after a fatal error at most 8 s. */
  shutdownTimeoutMs?: number;
}

export interface RunningPipeline {
  detector: Detector;
  /** The second stage (fleet incidents, action governor): the only writer of pos.actions.*. */
  stage: Stage;
  sink: Sink;
  api: RunningApi;
  opsUrls: { detector: string; sink: string; stage: string; api: string };
  /** Liveness of every ops endpoint (/healthz): false from the first fatal error on. */
  healthy(): boolean;
  /**
   * Detector (commits its batch), stage, sink (flushes), API, ops endpoints; each step runs even if
   * one before it failed (the first error is thrown). Rejects once the shutdown deadline passed
   * (work left; the steps still running are abandoned). The ClickHouse handle stays open (the caller owns it).
   */
  stop(): Promise<void>;
}

export async function startPipeline(o: PipelineOptions): Promise<RunningPipeline> {
  const { ctx, ch } = o;
  const shutdownTimeoutMs = o.shutdownTimeoutMs ?? serviceConfig(ctx.env, { httpPort: 0 }).shutdownTimeoutMs;
  // The process decides to die at the first fatal error: from then on every /healthz is 503.
  let dying = false;
  const healthy = () => !dying;
  const onFatal = (service: 'detector' | 'sink' | 'stage', e: Error) => {
    dying = true;
    o.onFatal(service, e);
  };
  const feed = createMemoryAlertFeed();
  const detectorProm = createRegistry({ service: 'detector' });
  const detector = createDetector({
    kafka: ctx.kafka,
    registry: ctx.registry,
    rules: o.rules,
    metrics: createDetectorMetrics(detectorProm),
    logger: ctx.logger,
    groupId: ctx.env['DETECTOR_GROUP_ID'] || defaultGroupId('detector', ctx.kafkaCfg.topicPrefix),
    topics: { ...ctx.topics, changelog: ctx.topics.detectorChangelog },
    liveRules: { topic: ctx.topics.rules, metrics: createRulesMetrics(detectorProm) },
    stage: { topic: ctx.topics.stageInput },
    onFatal: (e) => onFatal('detector', e),
    onAlerts: (alerts) => {
      o.onAlerts?.(alerts);
      for (const a of alerts) feed.publish(a);
    },
  });
  const stageProm = createRegistry({ service: 'stage', defaultMetrics: false });
  const stage = createStage({
    kafka: ctx.kafka,
    registry: ctx.registry,
    rules: o.rules,
    metrics: createStageMetrics(stageProm),
    logger: ctx.logger,
    groupId: ctx.env['STAGE_GROUP_ID'] || defaultGroupId('stage', ctx.kafkaCfg.topicPrefix),
    topics: { ...ctx.topics, input: ctx.topics.stageInput, changelog: ctx.topics.stageChangelog },
    liveRules: { topic: ctx.topics.rules, metrics: createRulesMetrics(stageProm) },
    onFatal: (e) => onFatal('stage', e),
    // The stage's alerts (fleet incidents, freeze circuit) are the pipeline's alerts too.
    onCommitted: (out) => {
      if (out.alerts.length === 0) return;
      o.onAlerts?.(out.alerts);
      for (const a of out.alerts) feed.publish(a);
    },
  });
  const sinkProm = createRegistry({ service: 'sink', defaultMetrics: false });
  const sink = createSink({
    kafka: ctx.kafka,
    registry: ctx.registry,
    ch,
    topics: ctx.topics,
    metrics: createSinkMetrics(sinkProm),
    logger: ctx.logger,
    groupId: ctx.env['SINK_GROUP_ID'] || defaultGroupId('sink', ctx.kafkaCfg.topicPrefix),
    // Skips exactly what the detector dead-letters (same clock-skew bound).
    maxClockSkewMs: o.rules.engine.max_clock_skew,
    liveRules: { topic: ctx.topics.rules, metrics: createRulesMetrics(sinkProm) },
    onFatal: (e) => onFatal('sink', e),
  });
  const ops = {
    detector: createOpsServer({ registry: detectorProm, healthy, ready: () => detector.ready(), host: '127.0.0.1', port: o.opsPorts.detector }),
    sink: createOpsServer({ registry: sinkProm, healthy, ready: () => sink.ready(), host: '127.0.0.1', port: o.opsPorts.sink }),
    stage: createOpsServer({ registry: stageProm, healthy, ready: () => stage.ready(), host: '127.0.0.1', port: o.opsPorts.stage ?? 0 }),
  };
  // A step that fails stops what the steps before it started: the caller gets the error and no
  // half-started pipeline keeping the process alive.
  const undo: (() => Promise<void>)[] = [];
  let api: RunningApi;
  let opsUrls: { detector: string; sink: string; stage: string };
  try {
    opsUrls = { detector: (await ops.detector.listen()).url, sink: '', stage: '' };
    undo.push(() => ops.detector.close());
    opsUrls.sink = (await ops.sink.listen()).url;
    undo.push(() => ops.sink.close());
    opsUrls.stage = (await ops.stage.listen()).url;
    undo.push(() => ops.stage.close());
    undo.push(() => detector.stop(), () => sink.stop(), () => stage.stop());
    await Promise.all([detector.start(), sink.start(), stage.start()]);
    api = await startApi({ env: ctx.env, ch, alertFeed: feed, logger: ctx.logger, healthy, ...(o.api.host ? { host: o.api.host } : {}), port: o.api.port, ...(o.opsPorts.api !== undefined ? { opsPort: o.opsPorts.api } : {}) });
  } catch (e) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw e;
  }
  return {
    detector,
    stage,
    sink,
    api,
    opsUrls: { ...opsUrls, api: api.opsUrl },
    healthy,
    async stop() {
      const steps = [() => detector.stop(), () => stage.stop(), () => sink.stop(), () => api.close(), () => ops.detector.close(), () => ops.sink.close(), () => ops.stage.close()];
      const all = (async () => {
        let first: unknown;
        for (const step of steps) {
          try {
            await step();
          } catch (e) {
            first ??= e;
          }
        }
        if (first !== undefined) throw first;
      })();
      const timeoutMs = dying ? Math.min(shutdownTimeoutMs, FATAL_STOP_TIMEOUT_MS) : shutdownTimeoutMs;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          all,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`the pipeline's stop did not finish within ${timeoutMs / 1000} s${dying ? '' : ' (SHUTDOWN_TIMEOUT_MS)'}; exiting with work left`)), timeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
        // Abandoned steps may still fail later: nobody waits for them any more.
        all.catch(() => undefined);
      }
    },
  };
}
