export * from './validators.js';
export {
  DETECTORS,
  DETECTOR_CATEGORIES,
  DETECTOR_IDENTITIES,
  containsPersonalData,
  nameSignal,
  nameTokens,
  nationalIdKind,
  type ColumnContext,
  type Detector,
  type DetectorKind,
  type NameSignal,
} from './detectors.js';
export { ColumnClassifier, classifyColumn, type ColumnClassifierOptions, type ColumnFinding } from './column-classifier.js';
export { DEFAULT_SAMPLE_ROWS, sampleLimit, scanDatabase, scanUrl, type ScanOptions, type ScanReport, type ScannedColumn, type ScannedTable } from './scan.js';
export {
  databaseNameOf,
  fideslangDataType,
  proposalToYaml,
  proposeDataset,
  proposeSystem,
  toManifestKey,
  type DatasetProposal,
  type ProposalOptions,
  type ProposedField,
  type SystemProposalOptions,
} from './proposal.js';
export { compareWithManifest, type CategoryMismatch, type DriftOptions, type DriftReport, type UndeclaredColumn, type VanishedField } from './drift.js';
