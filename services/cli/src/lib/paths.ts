import { fileURLToPath } from 'node:url';

/** The repository root (the CLI runs from its sources). */
export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
