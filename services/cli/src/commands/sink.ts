import { runSinkMain } from '@tillwatch/sink';

export const run = (_argv: string[]): Promise<number> => runSinkMain(process.env);
