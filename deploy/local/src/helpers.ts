// Small conveniences for the CLI and the test setup, built only on the public API.
import type { ComponentStatus } from './component.js';
import type { LocalStackOptions } from './config.js';
import { createLocalStack } from './stack.js';
import type { StackStatus } from './stack.js';

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${Math.round(bytes / (1024 * 1024))} MiB`;
}

/** One line per component, for `tillwatch stack status`. */
export function formatStatus(status: StackStatus): string {
  const row = (c: ComponentStatus) =>
    [
      c.name.padEnd(9),
      c.version.padEnd(8),
      c.state.padEnd(10),
      c.url.padEnd(40),
      `pid ${c.pid ?? '-'}`.padEnd(12),
      `rss ${mib(c.rssBytes)}`.padEnd(13),
      c.detail ? `(${c.detail})` : '',
    ]
      .join(' ')
      .trimEnd();
  return status.components.map(row).join('\n');
}

/**
 * For a vitest globalSetup: brings the stack up unless it already runs (then leaves it alone), and
 * returns a teardown that stops only what this call started. Set TILLWATCH_STACK_KEEP=1 to keep
 * a stack it started running after the tests.
 */
export async function startStackForTests(options: LocalStackOptions): Promise<() => Promise<void>> {
  const stack = createLocalStack(options);
  const before = await stack.status();
  if (before.healthy) return async () => {};
  const result = await stack.up();
  const startedHere = Object.values(result.components).some((r) => r === 'started');
  return async () => {
    if (startedHere && !process.env.TILLWATCH_STACK_KEEP) await stack.down();
  };
}
