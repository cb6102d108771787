export * from './generated.js';
export * from './topics.js';
export * from './contracts.js';
export * from './validate.js';
export * from './money.js';
export * from './ids.js';
export * from './pan.js';
