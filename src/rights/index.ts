/**
 * Data subject requests: planning access and erasure across the systems of the data map, and executing the
 * plans over the DataConnector port (docs/requests.md (Planning)).
 */
export {
  planRequest,
  type RequestKind,
  type Ownership,
  type IdentityValues,
  type LookupSource,
  type Lookup,
  type FieldShape,
  type FieldAction,
  type FieldErasure,
  type StepErasure,
  type PlanStep,
  type UnreachableCollection,
  type PlanProblemCode,
  type PlanProblem,
  type ErasureCut,
  type Plan,
} from './planner.js';
export {
  PlanExecutor,
  executeAccess,
  executeErasure,
  hashValue,
  stepId,
  type ConnectorFactory,
  type FoundKeys,
  type ExecutionContext,
  type ExecutionStep,
  type StepError,
  type AccessRow,
  type LookupOutcome,
  type RetainedField,
  type ChangeOutcome,
  type StepOutcome,
  type StepResult,
  type PlanExecutorDeps,
  type AccessOptions,
  type ErasureOptions,
  type AccessCollection,
  type AccessResult,
  type CollectionErasure,
  type ErasureResult,
} from './executor.js';
export { FINAL_STATUSES } from './engine/lifecycle.js';
