// tillwatch stack up | down [--wipe] | status | fetch
import { clickhouseStatusLine, formatStatus, localStack } from '../lib/stack.js';

export async function run(argv: string[]): Promise<number> {
  const [sub = 'status', ...rest] = argv;
  const stack = localStack(rest.includes('--verbose'));
  switch (sub) {
    case 'up': {
      const r = await stack.up();
      console.log(formatStatus(await stack.status()));
      console.log(await clickhouseStatusLine());
      console.log(`stack up in ${(r.elapsedMs / 1000).toFixed(1)} s (${Object.entries(r.components).map(([k, v]) => `${k} ${v}`).join(', ')})`);
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
      console.log(await clickhouseStatusLine());
      return s.healthy ? 0 : 3;
    }
    case 'fetch': {
      const r = await stack.fetch();
      console.log(`artifacts cached: ${(r.artifactBytes / 1024 / 1024).toFixed(0)} MiB`);
      return 0;
    }
    default:
      console.error('usage: tillwatch stack up | down [--wipe] | status | fetch [--verbose]');
      return 2;
  }
}
