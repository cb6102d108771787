// tillwatch rules validate FILE | push FILE | show | history  (rules as live data on pos.rules.v1)
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { pushRulesDocument, readRulesLedger, rulesTopicExists } from '@tillwatch/rules-live';
import { checkReachable, createContext } from '../lib/context.js';
import { RULES_SPEC, runRulesCli, type RulesStore } from '../lib/rules-cli.js';

export const spec = RULES_SPEC;

export function run(argv: string[]): Promise<number> {
  return runRulesCli(argv, {
    out: (l) => console.log(l),
    err: (l) => console.error(l),
    readFile: (p) => readFile(p, 'utf8'),
    defaultUser: () => process.env.TILLWATCH_USER || userInfo().username,
    store: (): RulesStore => {
      const ctx = createContext(process.env, 'rules');
      const o = { kafka: ctx.kafka, registry: ctx.registry, topic: ctx.topics.rules, logger: ctx.logger };
      // Kafka (and the registry, for push) answer, or one line naming which and how to start it (as every command).
      const reachable = (registry: boolean) => checkReachable(ctx, { registry });
      return {
        topic: o.topic,
        ledger: async () => {
          await reachable(false);
          return (await rulesTopicExists(o.kafka, o.topic)) ? readRulesLedger(o) : null;
        },
        push: async (req) => {
          await reachable(true);
          if (!(await rulesTopicExists(o.kafka, o.topic))) throw new Error(`${o.topic} does not exist: run tillwatch provision first`);
          return pushRulesDocument(o, req);
        },
        close: async () => undefined,
      };
    },
  });
}
