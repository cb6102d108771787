// Run-scoped topic names: tests and `tillwatch replay` use their own copies of every topic,
// so they never mix with the standing pipeline or with each other.
import { randomBytes } from 'node:crypto';
import { topicNames, type TopicRole } from '@tillwatch/schemas';

export const randomId = (prefix = 't'): string => `${prefix}-${randomBytes(5).toString('hex')}`;

/** Topic names under a prefix (random by default), for every role of the catalogue. */
export const randomTopics = (prefix = randomId('it')): Record<TopicRole, string> => topicNames(prefix);
