/**
 * Reports generated from the data map: records of processing (GDPR Art. 30), DPIA screening (Art. 35, WP248),
 * transfer assessment (Chapter V) and the data-flow graph. Pure functions of a {@link DataMap}: no I/O.
 */
export { buildRopa, ropaToCsv, ropaToHtml, ropaToJson, ROPA_CSV_COLUMNS } from './ropa.js';
export type { Ropa, RopaActivity, RopaController, RopaOptions, RopaRecipient, RopaRetentionRule, RopaTransfer, Traced } from './ropa.js';
export { DPIA_CRITERIA, WP248_CRITERIA, dpiaToText, screenDpia } from './dpia.js';
export type { DpiaConclusion, DpiaCriterion, DpiaCriterionResult, DpiaReason, DpiaReport, DpiaScreening } from './dpia.js';
export { assessTransfers, isFlagged, mechanismCitation, transfersToText } from './transfers.js';
export type { TransferAssessment, TransferAssessmentOptions, TransferAssessmentRow, TransferVerdict } from './transfers.js';
export { buildDataFlowGraph, graphToDot, graphToSvg } from './graph.js';
export type { DataFlowEdge, DataFlowGraph, DataFlowGraphOptions, DataFlowNode } from './graph.js';
export { CSV_MULTI_VALUE_SEPARATOR, csvField, toCsv } from './csv.js';
export { escapeXml } from './escape-xml.js';
export { collectionServes, purposeScope, type PurposeScope } from './manifest-paths.js';
