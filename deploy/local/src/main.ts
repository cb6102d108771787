// Stand-alone entry: `npx tsx deploy/local/src/main.ts up|down|status|fetch [--wipe]`, for .ci/run and
// for when the `tillwatch` CLI is not wired yet. Exit 1 with the error's message on failure.
import { fileURLToPath } from 'node:url';
import { formatStatus } from './helpers.js';
import { createLocalStack } from './stack.js';
import { LocalStackError } from './errors.js';

async function main(argv: string[]): Promise<number> {
  const [command = 'status', ...rest] = argv;
  const verbose = rest.includes('--verbose') || Boolean(process.env.TILLWATCH_DEBUG);
  const stack = createLocalStack({
    rootDir: fileURLToPath(new URL('../../../', import.meta.url)),
    logger: (level, message) => {
      if (level !== 'debug' || verbose) console.error(`[stack] ${message}`);
    },
  });
  switch (command) {
    case 'fetch': {
      const r = await stack.fetch();
      console.log(`artifacts: ${(r.artifactBytes / 1024 / 1024).toFixed(0)} MiB (fetched now: ${JSON.stringify(r.fetched)})`);
      return 0;
    }
    case 'up': {
      const r = await stack.up();
      console.log(formatStatus(await stack.status()));
      console.log(`up in ${(r.elapsedMs / 1000).toFixed(1)} s`);
      return 0;
    }
    case 'down': {
      const r = await stack.down({ wipeData: rest.includes('--wipe') });
      console.log(Object.entries(r).map(([k, v]) => `${k}: ${v}`).join(', '));
      return 0;
    }
    case 'status': {
      const s = await stack.status();
      console.log(formatStatus(s));
      return s.healthy ? 0 : 3;
    }
    default:
      console.error('usage: main.ts up | down [--wipe] | status | fetch [--verbose]');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof LocalStackError ? `error: ${error.message}` : error);
    process.exit(1);
  },
);
