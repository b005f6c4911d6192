import { setTimeout as sleep } from 'node:timers/promises';

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

interface Operation {
  readonly path: string;
  readonly method: string;
  readonly operation: Json;
}

interface Parameter extends Json {
  readonly name: string;
  readonly in: string;
}

/**
 * Calls a connector's operations the way the Power Automate designer and runtime do, knowing only the
 * definition: the URL from schemes/host/basePath, the API key from the connection where the
 * operation is secured, internal parameters filled with their defaults, booleans as `True`/`False`
 * (as Logic Apps writes them), pick lists from x-ms-dynamic-values, the body's form from
 * x-ms-dynamic-schema, and a 202 followed to its Location without the key until it answers otherwise.
 */
export class ConnectorDriver {
  /** The operationIds called so far. */
  readonly called = new Set<string>();

  constructor(
    readonly document: Json,
    private readonly apiKey: string,
  ) {}

  get baseUrl(): string {
    const schemes = this.document['schemes'] as string[];
    return `${schemes[0] ?? 'https'}://${String(this.document['host'])}${String(this.document['basePath'])}`;
  }

  operationIds(): string[] {
    return Object.values(this.document['paths'] as Record<string, Json>).flatMap((item) =>
      Object.entries(item)
        .filter(([method]) => !method.startsWith('x-'))
        .map(([, operation]) => String((operation as Json)['operationId'])),
    );
  }

  find(operationId: string): Operation {
    for (const [path, item] of Object.entries(this.document['paths'] as Record<string, Json>)) {
      for (const [method, operation] of Object.entries(item)) {
        if (isObject(operation) && operation['operationId'] === operationId) return { path, method, operation };
      }
    }
    throw new Error(`The definition has no operation ${operationId}.`);
  }

  parameters(operationId: string): Parameter[] {
    return (this.find(operationId).operation['parameters'] as Parameter[] | undefined) ?? [];
  }

  /** Calls an operation with the maker's values (by parameter name; `body` for the body), as the designer builds the request. */
  async call(operationId: string, values: Record<string, unknown> = {}): Promise<Response> {
    const { path, method, operation } = this.find(operationId);
    this.called.add(operationId);
    let url = `${this.baseUrl}${path}`;
    const query = new URLSearchParams();
    const headers: Record<string, string> = {};
    let body: string | undefined;
    for (const parameter of this.parameters(operationId)) {
      // What the maker gave, else the default of a required (typically internal) parameter.
      const value = values[parameter.name] ?? (parameter['required'] === true ? parameter['default'] : undefined);
      if (value === undefined || value === '') {
        if (parameter['required'] === true) throw new Error(`${operationId}: the required parameter ${parameter.name} has no value and no default.`);
        continue;
      }
      const text = typeof value === 'boolean' ? (value ? 'True' : 'False') : typeof value === 'number' ? String(value) : (value as string);
      if (parameter.in === 'path') url = url.replace(`{${parameter.name}}`, encodeURIComponent(text));
      else if (parameter.in === 'query') query.set(parameter.name, text);
      else if (parameter.in === 'header') headers[parameter.name] = text;
      else if (parameter.in === 'body') {
        body = JSON.stringify(value);
        headers['content-type'] = 'application/json';
      }
    }
    const security = operation['security'] ?? this.document['security'];
    if (Array.isArray(security) && security.length > 0) headers['x-functions-key'] = this.apiKey;
    const search = query.toString();
    return fetch(search === '' ? url : `${url}?${search}`, { method: method.toUpperCase(), headers, ...(body === undefined ? {} : { body }) });
  }

  /** The choices of a parameter's x-ms-dynamic-values, given the values chosen so far. */
  async dynamicValues(operationId: string, parameterName: string, chosen: Record<string, unknown> = {}): Promise<{ value: string; title: string }[]> {
    const parameter = this.parameters(operationId).find((candidate) => candidate.name === parameterName);
    const extension = parameter?.['x-ms-dynamic-values'] as Json | undefined;
    if (!extension) throw new Error(`${operationId}.${parameterName} has no x-ms-dynamic-values.`);
    const response = await this.call(String(extension['operationId']), this.dynamicParameters(extension['parameters'], chosen));
    if (response.status !== 200) throw new Error(`${String(extension['operationId'])} answered ${response.status}: ${await response.text()}`);
    const answer = (await response.json()) as Json;
    const collection = pathIn(answer, typeof extension['value-collection'] === 'string' ? extension['value-collection'] : '') as Json[];
    return collection.map((item) => ({ value: String(pathIn(item, String(extension['value-path'])) as string), title: String(pathIn(item, String(extension['value-title'])) as string) }));
  }

  /** The body's form from x-ms-dynamic-schema, given the values chosen so far. */
  async dynamicSchema(operationId: string, chosen: Record<string, unknown>): Promise<Json> {
    const body = this.parameters(operationId).find((candidate) => candidate.in === 'body');
    const extension = (body?.['schema'] as Json | undefined)?.['x-ms-dynamic-schema'] as Json | undefined;
    if (!extension) throw new Error(`${operationId} has no x-ms-dynamic-schema.`);
    const response = await this.call(String(extension['operationId']), this.dynamicParameters(extension['parameters'], chosen));
    if (response.status !== 200) throw new Error(`${String(extension['operationId'])} answered ${response.status}: ${await response.text()}`);
    return pathIn(await response.json(), String(extension['value-path'])) as Json;
  }

  /** `{"model": {"parameter": "model"}, "operation": "edit"}`: references to chosen values, or constants. */
  private dynamicParameters(parameters: unknown, chosen: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(
      Object.entries(isObject(parameters) ? parameters : {}).map(([name, spec]) => [name, isObject(spec) && typeof spec['parameter'] === 'string' ? chosen[spec['parameter']] : spec]),
    );
  }
}

function pathIn(value: unknown, path: string): unknown {
  return path.split('/').filter(Boolean).reduce<unknown>((current, key) => (isObject(current) ? current[key] : undefined), value);
}

/**
 * Follows a 202 as the runtime does: GET the absolute Location without the connection's key,
 * wait Retry-After seconds, stop at the first answer that is not 202.
 */
export async function followLikeTheRuntime(first: Response, maxPolls = 120): Promise<Response> {
  let response = first;
  for (let polls = 0; response.status === 202; polls++) {
    if (polls > maxPolls) throw new Error('the operation never ended');
    const location = response.headers.get('location');
    if (location === null || !URL.canParse(location)) throw new Error(`202 without an absolute Location: ${String(location)}`);
    await response.body?.cancel();
    await sleep(Number(response.headers.get('retry-after') ?? '20') * 1000);
    response = await fetch(location);
  }
  return response;
}

/**
 * A body the maker fills in from the form: every required field and every optional one with a
 * value the form offers (the first choice of each list, the lowest number), files as `files(name)`.
 */
export function fillForm(schema: Json, values: Record<string, unknown>): Record<string, unknown> {
  const properties = (schema['properties'] as Record<string, Json> | undefined) ?? {};
  const body: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(properties)) {
    if (name in values) body[name] = values[name];
    else if (Array.isArray(property['enum'])) body[name] = property['enum'][0];
    else if (property['type'] === 'integer') body[name] = property['minimum'] ?? 1;
    else if (property['type'] === 'string' && property['format'] === undefined) body[name] = `${name}-value`;
  }
  return body;
}

/**
 * The fields of `value` its declared schema does not name (`$ref`s followed), as paths: what the
 * designer would not offer as dynamic content to later steps.
 */
export function undeclaredFields(document: Json, schema: unknown, value: unknown, path = 'body'): string[] {
  if (!isObject(schema)) return [];
  if (typeof schema['$ref'] === 'string') {
    const name = schema['$ref'].replace('#/definitions/', '');
    return undeclaredFields(document, (document['definitions'] as Record<string, unknown>)[name], value, path);
  }
  if (Array.isArray(value)) return value.flatMap((item, index) => undeclaredFields(document, schema['items'], item, `${path}[${index}]`));
  if (!isObject(value) || !isObject(schema['properties'])) return [];
  const properties = schema['properties'];
  return Object.entries(value).flatMap(([name, field]) =>
    name in properties ? undeclaredFields(document, properties[name], field, `${path}.${name}`) : [`${path}.${name}`],
  );
}
