import { runApiMain } from '@tillwatch/api';

export const run = (_argv: string[]): Promise<number> => runApiMain(process.env);
