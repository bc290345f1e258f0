// Validates API request bodies against a Swagger 2.0 document (Firecracker's official API
// schema): finds the operation for a method and a concrete path, and checks the body parameter
// against its schema. Supports the keywords such schemas use: $ref, type, required, properties,
// additionalProperties, enum, minimum/maximum, items, min/maxLength, pattern, min/maxItems.
// An unknown validation keyword is an error, so nothing passes unchecked.
import { parseYamlSubset } from './yaml-subset.js';

export interface ValidationIssue {
  /** Where, e.g. "body.vcpu_count" or "path.drive_id". */
  readonly at: string;
  readonly message: string;
}

export interface ValidatorOptions {
  /**
   * Also reject properties a schema does not declare. Swagger allows them unless
   * additionalProperties is false; Firecracker's server rejects them (serde deny_unknown_fields),
   * so a typo such as "vcpus" would pass the schema yet fail against the real VMM.
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

// Keywords that only document.
const ANNOTATIONS = new Set(['description', 'default', 'example', 'readOnly', 'title', 'format', 'x-nullable', 'discriminator', 'xml', 'externalDocs']);
const CHECKED = new Set([
  '$ref',
  'type',
  'required',
  'properties',
  'additionalProperties',
  'enum',
  'minimum',
  'maximum',
  'items',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
]);

export class SwaggerValidator {
  private readonly definitions: Readonly<Record<string, Schema>>;
  private readonly paths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;

  constructor(
    document: unknown,
    private readonly options: ValidatorOptions = {},
  ) {
    const doc = asObject(document, 'the document');
    if (doc.swagger !== '2.0') {
      throw new Error(`not a Swagger 2.0 document (swagger: ${JSON.stringify(doc.swagger)})`);
    }
    this.definitions = asObject(doc.definitions ?? {}, 'definitions') as Record<string, Schema>;
    this.paths = asObject(doc.paths ?? {}, 'paths') as Record<string, Record<string, unknown>>;
  }

  static fromYaml(text: string, options: ValidatorOptions = {}): SwaggerValidator {
    return new SwaggerValidator(parseYamlSubset(text), options);
  }

  /** The definition names an operation's body must satisfy (for test reports). */
  bodySchemaName(method: string, path: string): string | undefined {
    const ref = this.operation(method, path)?.parameters.find((p) => p.in === 'body')?.schema?.$ref;
    return typeof ref === 'string' ? ref.replace('#/definitions/', '') : undefined;
  }

  /** Checks a request: the path and method exist, path parameters and the body fit. */
  validateRequest(method: string, path: string, body: unknown): ValidationIssue[] {
    const op = this.operation(method, path);
    if (op === undefined) {
      return [{ at: 'request', message: `no operation ${method.toUpperCase()} ${path} in the schema` }];
    }
    const issues: ValidationIssue[] = [];
    for (const parameter of op.parameters) {
      if (parameter.in === 'path') {
        const value = op.pathParams[parameter.name];
        if (value === undefined || value === '') {
          issues.push({ at: `path.${parameter.name}`, message: 'missing path parameter' });
        } else if (parameter.type !== undefined && parameter.type !== 'string') {
          issues.push(...this.check({ type: parameter.type }, coercePathParam(value, parameter.type), `path.${parameter.name}`));
        }
      } else if (parameter.in === 'body') {
        if (body === undefined) {
          if (parameter.required === true) {
            issues.push({ at: 'body', message: 'a body is required' });
          }
        } else if (parameter.schema !== undefined) {
          issues.push(...this.check(parameter.schema, body, 'body'));
        }
      }
    }
    if (body !== undefined && !op.parameters.some((p) => p.in === 'body')) {
      issues.push({ at: 'body', message: `${method.toUpperCase()} ${op.template} takes no body` });
    }
    return issues;
  }

  /** Checks a value against a named definition. */
  validateDefinition(name: string, value: unknown): ValidationIssue[] {
    return this.check({ $ref: `#/definitions/${name}` }, value, name);
  }

  private operation(method: string, path: string): { template: string; parameters: readonly Parameter[]; pathParams: Record<string, string> } | undefined {
    for (const [template, item] of Object.entries(this.paths)) {
      const pathParams = matchTemplate(template, path);
      const op = item[method.toLowerCase()];
      if (pathParams !== undefined && op !== undefined) {
        const parameters = (asObject(op, `${template} ${method}`).parameters ?? []) as Parameter[];
        return { template, parameters, pathParams };
      }
    }
    return undefined;
  }

  private resolve(ref: string): Schema {
    const name = /^#\/definitions\/(.+)$/.exec(ref)?.[1];
    const schema = name === undefined ? undefined : this.definitions[name];
    if (schema === undefined) {
      throw new Error(`unresolvable $ref ${ref}`);
    }
    return schema;
  }

  private check(schemaIn: Schema, value: unknown, at: string): ValidationIssue[] {
    let schema = schemaIn;
    for (let depth = 0; typeof schema.$ref === 'string'; depth += 1) {
      if (depth > 32) {
        throw new Error(`$ref cycle at ${at}`);
      }
      // Swagger 2.0: siblings of $ref are ignored, so a property's own description does not matter.
      schema = this.resolve(schema.$ref);
    }
    for (const keyword of Object.keys(schema)) {
      if (!CHECKED.has(keyword) && !ANNOTATIONS.has(keyword) && !keyword.startsWith('x-')) {
        throw new Error(`schema keyword "${keyword}" at ${at} is not supported by this validator`);
      }
    }
    const issues: ValidationIssue[] = [];
    const type = schema.type;
    if (typeof type === 'string' && !hasType(value, type)) {
      return [{ at, message: `expected ${type}, got ${describe(value)}` }];
    }
    if (Array.isArray(schema.enum) && !schema.enum.some((allowed) => allowed === value)) {
      issues.push({ at, message: `${JSON.stringify(value)} is not one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}` });
    }
    if (typeof value === 'number') {
      if (typeof schema.minimum === 'number' && value < schema.minimum) {
        issues.push({ at, message: `${value} is below the minimum ${schema.minimum}` });
      }
      if (typeof schema.maximum === 'number' && value > schema.maximum) {
        issues.push({ at, message: `${value} is above the maximum ${schema.maximum}` });
      }
    }
    if (typeof value === 'string') {
      if (typeof schema.minLength === 'number' && value.length < schema.minLength) {
        issues.push({ at, message: `shorter than ${schema.minLength} characters` });
      }
      if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) {
        issues.push({ at, message: `longer than ${schema.maxLength} characters` });
      }
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) {
        issues.push({ at, message: `does not match ${schema.pattern}` });
      }
    }
    if (Array.isArray(value)) {
      if (typeof schema.minItems === 'number' && value.length < schema.minItems) {
        issues.push({ at, message: `fewer than ${schema.minItems} items` });
      }
      if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) {
        issues.push({ at, message: `more than ${schema.maxItems} items` });
      }
      if (schema.items !== undefined) {
        const items = asObject(schema.items, `${at} items`);
        for (const [i, item] of value.entries()) issues.push(...this.check(items, item, `${at}[${i}]`));
      }
    }
    if (isPlainObject(value)) {
      issues.push(...this.checkObject(schema, value, at));
    }
    return issues;
  }

  private checkObject(schema: Schema, value: Readonly<Record<string, unknown>>, at: string): ValidationIssue[] {
    const issues: ValidationIssue[] = [];
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (value[name] === undefined) {
        issues.push({ at: `${at}.${name}`, message: 'required property is missing' });
      }
    }
    for (const [name, propertyValue] of Object.entries(value)) {
      const property = properties[name];
      if (property !== undefined) {
        issues.push(...this.check(property, propertyValue, `${at}.${name}`));
        continue;
      }
      const additional = schema.additionalProperties;
      if (additional === false || (additional === undefined && this.options.rejectUndeclaredProperties === true && schema.properties !== undefined)) {
        issues.push({ at: `${at}.${name}`, message: 'property is not declared by the schema' });
      } else if (isPlainObject(additional)) {
        issues.push(...this.check(additional, propertyValue, `${at}.${name}`));
      }
    }
    return issues;
  }
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

function coercePathParam(value: string, type: string): unknown {
  return type === 'integer' || type === 'number' ? Number(value) : value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'object':
      return isPlainObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    default:
      throw new Error(`unknown schema type "${type}"`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'an array';
  }
  if (typeof value === 'number' && !Number.isInteger(value)) {
    return `the number ${value}`;
  }
  return `${typeof value} ${JSON.stringify(value)?.slice(0, 40) ?? ''}`.trim();
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (!isPlainObject(value)) {
    throw new Error(`${what} is not an object`);
  }
  return value;
}
