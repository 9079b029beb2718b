export * from './incident-service.js';
export { assessRisk, maxOutcome, HIGH_RISK_SCORE, VOLUME_THRESHOLDS, type RiskAssessment, type RiskInput, type RiskReason } from './assess.js';
export { authorityDraft, individualsDraft, escapeHtml, likelyConsequences, type DraftFacts, type RenderedMessage } from './render.js';
export { BreachDetector, PERSONAL_DATA_READS, dataMapPurposeKeys, judgePurpose, median, startBreachMonitoring, type BreachDetectorDeps, type DeclaredPurposesSource, type DetectionHit, type DetectionOptions, type DetectionRule, type PurposeMismatch } from './detect.js';
