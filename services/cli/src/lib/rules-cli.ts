// `tillwatch rules validate|push|show|history`: the logic, behind ports (the rules topic, files,
// output), so it is tested without Kafka; commands/rules.ts wires the real ones.
import { RulesConfigError } from '@tillwatch/rules';
import { formatUsageLine, parseCommand, type CommandSpec } from './args.js';
import { RulesVersionError, formatIssues, formatOfPath, validateRulesDocument, type PushRequest, type PushResult, type RulesHistoryEntry, type RulesLedger } from '@tillwatch/rules-live';

export interface RulesStore {
  /** The topic's name, for messages. */
  readonly topic: string;
  /** Reads the whole topic (null: the topic does not exist). */
  ledger(): Promise<RulesLedger | null>;
  push(req: PushRequest): Promise<PushResult>;
  close(): Promise<void>;
}

export interface RulesCliDeps {
  out(line: string): void;
  err(line: string): void;
  readFile(path: string): Promise<string>;
  /** Built only for the sub-commands that need Kafka (validate does not). */
  store(): RulesStore;
  /** Who pushes: --by, else TILLWATCH_USER, else the OS user. */
  defaultUser(): string;
}

export const RULES_SPEC = {
  name: 'rules',
  summary: 'Rules as live data on the compacted topic pos.rules.v1: validate a rules document, push it (every detector applies it within seconds, without a restart), show the version in force, list every version pushed.',
  positionals: {
    usage: 'validate FILE | push FILE | show | history',
    description: [
      'sub-commands:',
      '  validate FILE   check a rules document (YAML or JSON, with version: N); every problem is listed; nothing is contacted',
      '  push FILE       validate, refuse a version not greater than the one in force, publish to pos.rules.v1',
      '  show            the version in force, who pushed it and when',
      '  history         every record of pos.rules.v1, oldest first, with its status (active, superseded, rejected, duplicate)',
    ],
  },
  options: {
    by: { type: 'string', value: 'NAME', description: 'push: who pushes (default TILLWATCH_USER, else the OS user)' },
    comment: { type: 'string', value: 'TEXT', description: 'push: a comment stored with the version' },
    document: { type: 'boolean', description: 'show: print the document in force too' },
    json: { type: 'boolean', description: 'show, history: one JSON object per line (for scripts)' },
  },
  notes: ['Exit: 0 done; 1 invalid or refused document, or a failure; 2 wrong command line.'],
} satisfies CommandSpec;

export const RULES_USAGE = formatUsageLine(RULES_SPEC);

const iso = (ms: number): string => (ms > 0 ? new Date(ms).toISOString() : '-');

function historyLine(e: RulesHistoryEntry): string {
  const who = e.pushed_by || '-';
  const base = `${String(e.version).padStart(4)}  ${e.status.padEnd(10)}  ${iso(e.pushed_at).padEnd(24)}  ${who} (${e.via || '-'})  offset ${e.offset}`;
  const extra = e.comment ? `  "${e.comment}"` : '';
  const problems = e.problems.length ? `\n${formatIssues(e.problems).replace(/^/gm, '      ')}` : '';
  return base + extra + problems;
}

async function withStore<T>(deps: RulesCliDeps, fn: (s: RulesStore) => Promise<T>): Promise<T> {
  const s = deps.store();
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

export async function runRulesCli(argv: string[], deps: RulesCliDeps): Promise<number> {
  // A wrong option is a UsageError, --help a HelpRequested: the CLI's main prints them (exit 2 / 0).
  const { values, positionals: all } = parseCommand(RULES_SPEC, argv);
  const [sub, ...positionals] = all;
  if (!sub || sub === 'help') {
    (sub ? deps.out : deps.err)(RULES_USAGE);
    return sub ? 0 : 2;
  }
  const file = positionals[0];
  switch (sub) {
    case 'validate':
    case 'push': {
      if (!file || positionals.length > 1) {
        deps.err(RULES_USAGE);
        return 2;
      }
      const text = await deps.readFile(file);
      const format = formatOfPath(file);
      let version: number;
      try {
        version = validateRulesDocument(text, format).version;
      } catch (e) {
        if (!(e instanceof RulesConfigError)) throw e;
        deps.err(`${file}: invalid rules document, ${e.issues.length} problem${e.issues.length === 1 ? '' : 's'}:\n${formatIssues(e.issues)}`);
        return 1;
      }
      if (sub === 'validate') {
        deps.out(`${file}: valid rules document, version ${version}`);
        return 0;
      }
      return withStore(deps, async (s) => {
        try {
          const r = await s.push({ text, format, pushedBy: values.by ?? deps.defaultUser(), via: 'cli', comment: values.comment ?? null });
          deps.out(`pushed version ${r.version} (version in force before: ${r.previousVersion ?? 'none'}) to ${s.topic}, offset ${r.offset}; detectors apply it within seconds`);
          return 0;
        } catch (e) {
          if (e instanceof RulesVersionError || e instanceof RulesConfigError) {
            deps.err(`${file}: refused: ${e instanceof RulesConfigError ? `\n${formatIssues(e.issues)}` : e.message}`);
            return 1;
          }
          throw e;
        }
      });
    }
    case 'show':
    case 'history':
      return withStore(deps, async (s) => {
        const ledger = await s.ledger();
        if (!ledger) {
          deps.err(`${s.topic} does not exist (run tillwatch provision); detectors use TILLWATCH_RULES or the default rules`);
          return 1;
        }
        if (sub === 'history') {
          const h = ledger.history();
          if (values.json) for (const e of h) deps.out(JSON.stringify(e));
          else {
            deps.out(`${h.length} record${h.length === 1 ? '' : 's'} on ${s.topic} (oldest first):`);
            for (const e of h) deps.out(historyLine(e));
          }
          return 0;
        }
        const a = ledger.active();
        if (!a) {
          deps.out(`no rules version on ${s.topic} yet: detectors use TILLWATCH_RULES or the default rules`);
          return 0;
        }
        if (values.json) deps.out(JSON.stringify({ ...a.entry, document: a.document }));
        else {
          deps.out(`version ${a.config.version} in force, pushed by ${a.entry.pushed_by} (${a.entry.via}) at ${iso(a.entry.pushed_at)}${a.entry.comment ? `: "${a.entry.comment}"` : ''}`);
          if (values.document) deps.out(a.document.trimEnd());
        }
        return 0;
      });
    default:
      deps.err(`tillwatch rules: unknown sub-command "${sub}"\n${RULES_USAGE}`);
      return 2;
  }
}
