/** ARM template evaluator: see template.ts (plan + deploy), expressions.ts, functions.ts, hash.ts. */
export { ArmError, type ArmErrorBody } from './errors.js';
export { armGuid, uniqueString } from './hash.js';
export { evaluateExpression, isExpression, parseExpression, type Value } from './expressions.js';
export { evaluatorFor, type FunctionEnv } from './functions.js';
export {
  deploy,
  normalizeParameters,
  planDeployment,
  type Apply,
  type AppliedResource,
  type DeploymentContext,
  type DeploymentPlan,
  type DeploymentResult,
  type PlannedResource,
  type ResourceResult,
  type ResourceToApply,
} from './template.js';
