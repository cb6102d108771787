export { createApp, type CreateAppOptions, type RateLimitOptions, type ApiApp, type RouteInfo } from './app.js';
export { startApi, runApiMain, type StartApiOptions, type RunningApi } from './main.js';
export { createPollingAlertFeed, createMemoryAlertFeed, type AlertFeed, type AlertListener, type PollingAlertFeed, type PollingAlertFeedOptions, type MemoryAlertFeed } from './feed.js';
export { createAuthenticator, parseApiKeys, generateDevKey, extractKey, roleAllows, Roles, type Role, type Access, type Principal, type ApiKeyEntry, type Authenticator } from './auth.js';
export { apiConfig, type ApiConfig } from './config.js';
export { maskPan, maskDeep, luhnValid } from './mask.js';
export { encodeCursor, decodeCursor, CursorError, type Cursor } from './cursor.js';
export { createAlertStore, TIME_TABLE, type AlertStore, type AlertView, type AlertFilter, type AlertPage, type TerminalView, type TriageEntry, type ReadPaths } from './store.js';
export { createAlertReadModel, type AlertReadModel, type AlertReadModelOptions, type ReadModelState } from './read-model/read-model.js';
