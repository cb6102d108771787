import { runDetectorMain } from '@tillwatch/detector';

export const run = (_argv: string[]): Promise<number> => runDetectorMain(process.env);
