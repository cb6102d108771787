// The second stage follows pos.rules.v1 as the detector does (issue 10; the follower and the
// batch-boundary switch are @tillwatch/rules-live's, shared with the detector): a version pushed while
// the stage runs applies at its next batch without a restart, state kept, and its alerts carry the
// version. Real broker and registry; stage input records written straight to the internal topic.
import { afterAll, describe, expect, it } from 'vitest';
import type { TopicRole } from '@tillwatch/schemas';
import { defaultRulesConfig } from '@tillwatch/rules';
import { createRulesMetrics, pushRulesDocument } from '@tillwatch/rules-live';
import type { StageOutput, StageRecord } from '@tillwatch/stage';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createRegistry } from '@tillwatch/telemetry';
import { createStage, createStageMetrics } from '../src/index.js';
import { deleteTopics, setupTopics, sleep, waitCommitted } from '../../detector/test/support.js';

const { kafka, registry, logger } = testKafka('stage-rules-it');
const cleanup: Record<TopicRole, string>[] = [];
afterAll(async () => {
  for (const t of cleanup) await deleteTopics(kafka, t);
});

const MIN = 60_000;
const T = Date.UTC(2026, 0, 5, 9);
const start = (i: number, time: number): StageRecord => ({ type: 'start', partition: 0, time, rule: 'sync_lag', alert_id: `lag-${i}`, terminal_id: `T${i}`, merchant_id: `M${i}`, event_id: `ev-${i}` });

async function until(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('live rules in the second stage', () => {
  it('a version pushed while it runs applies at its next batch: an incident of 3 terminals opens under min_terminals 3, its alert carries version 2', async () => {
    const topics = await setupTopics(kafka, registry, 1);
    cleanup.push(topics);
    const push = (text: string) => pushRulesDocument({ kafka, registry, topic: topics.rules, logger }, { text, format: 'yaml', pushedBy: 'it', via: 'cli' });
    await push('version: 1\n');
    const groupId = randomId('g-stage-rules');
    const prom = createRegistry({ service: 'stage-test', defaultMetrics: false });
    const outs: StageOutput[] = [];
    const stage = createStage({
      kafka,
      registry,
      rules: defaultRulesConfig(),
      liveRules: { topic: topics.rules, metrics: createRulesMetrics(prom) },
      metrics: createStageMetrics(prom),
      logger,
      groupId,
      topics: { ...topics, input: topics.stageInput, changelog: topics.stageChangelog },
      inputPartitions: 1,
      onCommitted: (o) => outs.push(o),
    });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const send = (records: StageRecord[]) => producer.send({ topic: topics.stageInput, acks: -1, messages: records.map((r) => ({ key: null, value: Buffer.from(JSON.stringify(r)) })) });
    try {
      await stage.start();
      expect(stage.rulesVersion()).toBe(1);
      await until(() => stage.ready(), 'stage ready');
      // Under version 1 (min_terminals 10): four terminals start an episode, no incident.
      await send([...[0, 1, 2, 3].map((i) => start(i, T + i * MIN)), { type: 'watermark', partition: 0, time: T + 10 * MIN }]);
      await waitCommitted(kafka, groupId, topics.stageInput);
      expect(outs.flatMap((o) => o.alerts)).toEqual([]);

      await push('version: 2\nstage:\n  sync_incident:\n    min_terminals: 3\n');
      await until(() => stage.rulesVersion() === 2, 'version 2 in force');
      // Three more terminals within the window: enough under version 2 (the first four are out of its window).
      await send([...[10, 11, 12].map((i) => start(i, T + (i + 10) * MIN)), { type: 'watermark', partition: 0, time: T + 30 * MIN }]);
      await waitCommitted(kafka, groupId, topics.stageInput);
      const alerts = outs.flatMap((o) => o.alerts);
      expect(alerts.map((a) => [a.rule, a.rules_version, a.details.threshold, a.details.terminals, a.detected_at])).toEqual([['sync_incident', 2, 3, 3, T + 22 * MIN]]);
      // The incident's members are the three terminals that opened it under the new version.
      expect(outs.flatMap((o) => o.memberships).map((m) => m.alert_id)).toEqual(['lag-10', 'lag-11', 'lag-12']);
      expect((await prom.getSingleMetric('tillwatch_rules_version')?.get())?.values[0]?.value).toBe(2);
    } finally {
      await producer.disconnect();
      await stage.stop();
    }
  });
});
