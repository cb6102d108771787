import { defineConfig } from 'vitest/config';

const exclude = ['**/node_modules/**', '**/dist/**', '.stack/**', '.cache/**'];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{schemas,packages,services,deploy,load-tests}/**/test/**/*.test.ts'],
          exclude: [...exclude, '**/*.int.test.ts'],
          // Property and golden tests run whole engines; 5 s (vitest's default) is too tight on two
          // busy cores. Tests check behaviour, not time: this only bounds a hung test.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['{schemas,packages,services,deploy,load-tests}/**/test/**/*.int.test.ts'],
          exclude,
          // Starts the real local stack (Kafka, registry) once if it is not already running.
          globalSetup: ['./test/stack.global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // One embedded ClickHouse data path per process: integration files share one worker.
          fileParallelism: false,
        },
      },
    ],
  },
});
