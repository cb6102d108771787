// @tillwatch/rules-live: rules documents as live data on pos.rules.v1 (issue 9, part 2).
export * from './ledger.js';
export * from './topic.js';
export * from './live.js';
