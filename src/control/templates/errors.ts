/**
 * Azure Resource Manager's error shape: `{code, message, target?, details?, additionalInfo?}`, as
 * ARM's deployments answer it inside `{"error": …}`. Template problems are `InvalidTemplate` with
 * ARM's message texts; where ARM names a line and column of the template file, Fleethub names the
 * JSON path instead (ARM also gives that path, in `additionalInfo[].info.path`).
 */
export interface ArmErrorBody {
  code: string;
  message: string;
  target?: string;
  details?: ArmErrorBody[];
  additionalInfo?: { type: string; info: Record<string, unknown> }[];
}

export class ArmError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly path?: string,
    readonly details?: ArmErrorBody[],
    readonly target?: string,
  ) {
    super(message);
    this.name = 'ArmError';
  }

  toBody(): ArmErrorBody {
    const body: ArmErrorBody = { code: this.code, message: this.message };
    if (this.target !== undefined) body.target = this.target;
    if (this.details) body.details = this.details;
    if (this.path !== undefined) {
      body.additionalInfo = [{ type: 'TemplateViolation', info: { lineNumber: 0, linePosition: 0, path: this.path } }];
    }
    return body;
  }
}

/** An error inside the expression language, before we know where in the template it happened. */
export class ExpressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpressionError';
  }
}

const EXPRESSIONS_HELP = 'Please see https://aka.ms/arm-template-expressions for usage details.';

/** `InvalidTemplate` with ARM's "Deployment template validation failed: '…'." wrapper. */
export function invalidTemplate(message: string, path?: string): ArmError {
  return new ArmError('InvalidTemplate', `Deployment template validation failed: '${message}'.`, 400, path);
}

/** An expression failed while evaluating the template element at `path`. */
export function expressionFailed(what: string, path: string, cause: unknown): ArmError {
  if (cause instanceof ArmError) return cause;
  const inner = cause instanceof Error ? cause.message : String(cause);
  const text = inner.includes('aka.ms/') ? inner : `${inner} ${EXPRESSIONS_HELP}`;
  return invalidTemplate(`The template ${what} at '${path}' is not valid: ${text}`, path);
}
