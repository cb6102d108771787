export * from './random.js';
export * from './fleet.js';
export * from './simulator.js';
