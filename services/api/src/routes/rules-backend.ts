// The API's RulesBackend on Kafka: a follower of pos.rules.v1 (its own reader, nothing committed)
// serves the GETs from memory; PUT publishes through pushRulesDocument (which reads the topic to
// check the version) and then waits, briefly, until the follower has read the new record so that a
// following GET shows it. A topic that does not exist (yet) is looked for again at most every 10 s.
// Before the follower starts, Kafka is probed (3 s at most, @tillwatch/stream checkKafkaReachable):
// with Kafka down a rules request answers 503 within seconds, not after kafkajs's ~30 s of retries.
import type { Kafka } from 'kafkajs';
import { createRulesFollower, pushRulesDocument, rulesTopicExists, type RulesFollower, type RulesLedger } from '@tillwatch/rules-live';
import { kafkaConfig, registryConfig, type Env } from '@tillwatch/config';
import { topicNames } from '@tillwatch/schemas';
import { checkKafkaReachable, createKafka, createRegistryClient, type RegistryClient } from '@tillwatch/stream';
import type { Logger } from '@tillwatch/telemetry';
import { RulesUnavailableError, type RulesBackend } from './rules.js';

export interface KafkaRulesBackend extends RulesBackend {
  close(): Promise<void>;
}

export interface KafkaRulesBackendOptions {
  kafka: Kafka;
  registry: RegistryClient;
  topic: string;
  logger: Logger;
  /** Asked before the follower starts: rejects quickly when Kafka is not there (its message becomes the 503's). */
  probe?: () => Promise<void>;
}

export function createKafkaRulesBackend(o: KafkaRulesBackendOptions): KafkaRulesBackend {
  let follower: RulesFollower | undefined;
  let starting: Promise<void> | undefined;
  let ready = false;
  let lastProblem = 'not read yet';
  let checkedAt = 0;
  let closed = false;

  const ensure = async (): Promise<void> => {
    if (ready || closed) return;
    if (starting) return starting;
    if (Date.now() - checkedAt < 10_000 && checkedAt > 0) return;
    checkedAt = Date.now();
    starting = (async () => {
      try {
        await o.probe?.();
        if (!(await rulesTopicExists(o.kafka, o.topic))) {
          lastProblem = `${o.topic} does not exist (run tillwatch provision)`;
          return;
        }
        const f = createRulesFollower({ kafka: o.kafka, registry: o.registry, topic: o.topic, logger: o.logger, groupPrefix: 'tillwatch-api-rules', startTimeoutMs: 30_000 });
        await f.start();
        if (closed) await f.stop();
        else {
          follower = f;
          ready = true;
        }
      } catch (e) {
        lastProblem = `cannot read ${o.topic}: ${(e as Error).message}`;
        o.logger.warn({ err: e, topic: o.topic }, 'rules topic unavailable');
      } finally {
        starting = undefined;
      }
    })();
    return starting;
  };

  const ledger = async (): Promise<RulesLedger> => {
    await ensure();
    if (!ready || !follower) throw new RulesUnavailableError(`rules unavailable: ${lastProblem}`);
    return follower.ledger;
  };

  return {
    ledger,
    async push(req) {
      await ledger(); // 503 when the topic cannot be read
      const r = await pushRulesDocument(o, req);
      for (let i = 0; i < 50 && follower && follower.ledger.history().every((e) => e.offset !== r.offset); i++) await new Promise((res) => setTimeout(res, 100));
      return r;
    },
    async close() {
      // A start still running is not waited for: it stops its follower itself when it sees `closed`.
      closed = true;
      await follower?.stop();
    },
  };
}

/** The backend from the process environment (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, TOPIC_PREFIX). Nothing connects until the first rules request. */
export function rulesBackendFromEnv(env: Env, logger: Logger): KafkaRulesBackend {
  const kcfg = kafkaConfig(env);
  return createKafkaRulesBackend({
    probe: () => checkKafkaReachable(kcfg),
    kafka: createKafka({ config: kcfg, logger, service: 'api-rules' }),
    registry: createRegistryClient(registryConfig(env)),
    topic: topicNames(kcfg.topicPrefix).rules,
    logger,
  });
}
