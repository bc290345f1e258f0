// Firecracker's official API schema (Swagger 2.0, vendored beside this file from
// shared/reference; test data, never shipped) and a check of API requests against it: the
// operation for a method and a concrete path, its path parameters, and the body against the
// operation's schema. The `yaml` package parses it; Ajv in JSON Schema draft-04 mode validates,
// since a Swagger 2.0 Schema Object is draft-04 plus five annotation fields.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, SchemaObject, ValidateFunction } from 'ajv';
import AjvDraft04 from 'ajv-draft-04';
import { parse } from 'yaml';

/** SHELLWEGO_FIRECRACKER_SCHEMA points elsewhere to check another Firecracker release. */
export const firecrackerSchemaPath = process.env.SHELLWEGO_FIRECRACKER_SCHEMA ?? fileURLToPath(new URL('./firecracker-api.yaml', import.meta.url));

export interface SchemaIssue {
  /** Where, e.g. "body.vcpu_count" or "path.drive_id". */
  readonly at: string;
  readonly message: string;
}

export interface FirecrackerSchemaOptions {
  /**
   * Also refuse properties a definition does not declare. Swagger allows them unless
   * additionalProperties is false; Firecracker's server refuses them (serde deny_unknown_fields),
   * so a typo such as "vcpus" would fit the schema yet fail against the real VMM.
   */
  readonly rejectUndeclaredProperties?: boolean;
}

type Schema = Readonly<Record<string, unknown>>;

interface Parameter {
  readonly name: string;
  readonly in: string;
  readonly required?: boolean;
  readonly type?: string;
  readonly schema?: Schema;
}

interface Operation {
  readonly template: string;
  readonly parameters: readonly Parameter[];
  readonly pathParams: Readonly<Record<string, string>>;
}

// The definitions are registered as one schema under this id; '#/definitions/X' refs point into it.
const DEFINITIONS_ID = 'firecracker-api';
// Swagger 2.0's Schema Object fields that draft-04 lacks; all of them only document.
const SWAGGER_ANNOTATIONS = ['discriminator', 'readOnly', 'xml', 'externalDocs', 'example'];

export class FirecrackerSchema {
  private readonly ajv;
  private readonly paths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  private readonly compiled = new Map<string, ValidateFunction>();
  /** The definitions' names, in document order. */
  readonly definitionNames: readonly string[];

  static load(path = firecrackerSchemaPath, options: FirecrackerSchemaOptions = {}): FirecrackerSchema {
    return new FirecrackerSchema(parse(readFileSync(path, 'utf8')) as unknown, options);
  }

  constructor(
    document: unknown,
    private readonly options: FirecrackerSchemaOptions = {},
  ) {
    const doc = asObject(document, 'the document');
    if (doc.swagger !== '2.0') {
      throw new Error(`not a Swagger 2.0 document (swagger: ${JSON.stringify(doc.swagger)})`);
    }
    const definitions = asObject(doc.definitions ?? {}, 'definitions');
    this.paths = asObject(doc.paths ?? {}, 'paths') as Record<string, Record<string, unknown>>;
    this.definitionNames = Object.keys(definitions);
    // ajv-draft-04 is CommonJS whose export is also its own `default`; TypeScript types only that.
    // Strict mode: a keyword Ajv does not know fails the compile, so nothing passes unchecked.
    // Formats stay unchecked: Swagger's int32/int64 only document, and one of Firecracker's
    // "formats" is a bare regex no format checker knows.
    this.ajv = new AjvDraft04.default({ allErrors: true, strict: true, validateFormats: false });
    this.ajv.addVocabulary(SWAGGER_ANNOTATIONS);
    const converted = Object.fromEntries(Object.entries(definitions).map(([name, schema]) => [name, toAjv(asObject(schema, name), options)]));
    this.ajv.addSchema({ id: DEFINITIONS_ID, definitions: converted });
  }

  /** The definition an operation's body must satisfy (for test reports). */
  bodySchemaName(method: string, path: string): string | undefined {
    const ref = this.operation(method, path)?.parameters.find((p) => p.in === 'body')?.schema?.$ref;
    return typeof ref === 'string' ? ref.replace('#/definitions/', '') : undefined;
  }

  /** Checks a request: the path and method exist, path parameters and the body fit. */
  validateRequest(method: string, path: string, body: unknown): SchemaIssue[] {
    const op = this.operation(method, path);
    if (op === undefined) {
      return [{ at: 'request', message: `no operation ${method.toUpperCase()} ${path} in the schema` }];
    }
    const issues: SchemaIssue[] = [];
    for (const parameter of op.parameters) {
      if (parameter.in === 'path' && parameter.type !== undefined) {
        const value = op.pathParams[parameter.name] ?? '';
        const typed = parameter.type === 'integer' || parameter.type === 'number' ? Number(value) : value;
        issues.push(...this.check(`${op.template} path ${parameter.name}`, { type: parameter.type }, typed, `path.${parameter.name}`));
      } else if (parameter.in === 'body') {
        if (body === undefined) {
          if (parameter.required === true) issues.push({ at: 'body', message: 'a body is required' });
        } else if (parameter.schema !== undefined) {
          issues.push(...this.check(`${op.template} ${method.toLowerCase()} body`, parameter.schema, body, 'body'));
        }
      }
    }
    if (body !== undefined && !op.parameters.some((p) => p.in === 'body')) {
      issues.push({ at: 'body', message: `${method.toUpperCase()} ${op.template} takes no body` });
    }
    return issues;
  }

  /** Checks a value against a named definition; throws when Ajv cannot compile it. */
  validateDefinition(name: string, value: unknown): SchemaIssue[] {
    return this.check(`definition ${name}`, { $ref: `#/definitions/${name}` }, value, name);
  }

  private check(key: string, schema: Schema, value: unknown, at: string): SchemaIssue[] {
    let validate = this.compiled.get(key);
    if (validate === undefined) {
      validate = this.ajv.compile(toAjv(schema, this.options));
      this.compiled.set(key, validate);
    }
    return validate(value) ? [] : (validate.errors ?? []).map((error) => issueOf(error, at));
  }

  private operation(method: string, path: string): Operation | undefined {
    for (const [template, item] of Object.entries(this.paths)) {
      const pathParams = matchTemplate(template, path);
      const op = item[method.toLowerCase()];
      if (pathParams !== undefined && op !== undefined) {
        return { template, parameters: (asObject(op, `${template} ${method}`).parameters ?? []) as Parameter[], pathParams };
      }
    }
    return undefined;
  }
}

/**
 * A Swagger schema as Ajv takes it: '#/definitions/X' refs point into the registered definitions
 * (Swagger ignores a $ref's siblings, so they go), and with rejectUndeclaredProperties every
 * object that lists its properties refuses others.
 */
function toAjv(schema: Schema, options: FirecrackerSchemaOptions): SchemaObject {
  if (typeof schema.$ref === 'string') {
    return { $ref: schema.$ref.replace(/^#\/definitions\//, `${DEFINITIONS_ID}#/definitions/`) };
  }
  const out: Record<string, unknown> = { ...schema };
  if (isPlainObject(schema.properties)) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([name, property]) => [name, toAjv(asObject(property, name), options)]));
  }
  if (isPlainObject(schema.items)) {
    out.items = toAjv(schema.items, options);
  }
  if (isPlainObject(schema.additionalProperties)) {
    out.additionalProperties = toAjv(schema.additionalProperties, options);
  } else if (schema.additionalProperties === undefined && schema.properties !== undefined && options.rejectUndeclaredProperties === true) {
    out.additionalProperties = false;
  }
  return out;
}

/** An Ajv error with its place as a dotted path below `at`, naming the property it is about. */
function issueOf(error: ErrorObject, at: string): SchemaIssue {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
  const params = error.params as { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
  const property = params.missingProperty ?? params.additionalProperty;
  const where = [at, ...segments, ...(property !== undefined ? [property] : [])].join('.');
  const allowed = params.allowedValues !== undefined ? `: ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}` : '';
  return { at: where, message: `${error.message ?? error.keyword}${allowed}` };
}

function matchTemplate(template: string, path: string): Record<string, string> | undefined {
  const names: string[] = [];
  const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([^}]+)\\?\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  const match = new RegExp(`^${pattern}$`).exec(path);
  if (match === null) {
    return undefined;
  }
  return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1] ?? '')]));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (!isPlainObject(value)) {
    throw new Error(`${what} is not an object`);
  }
  return value;
}
