// Rules as live data in the detector (issue 9): the follower of pos.rules.v1 and its metrics live in
// @tillwatch/rules-live (shared with the second stage); re-exported here for the detector's users.
export { createRulesMetrics, startLiveRules, type LiveRules, type LiveRulesOptions, type RulesMetrics } from '@tillwatch/rules-live';
