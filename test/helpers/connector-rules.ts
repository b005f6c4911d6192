/**
 * The Power Platform connector rules a certification review applies to a definition, as explicit
 * checks (learn.microsoft.com/connectors/custom-connectors/openapi-extensions and coding-standards,
 * the PowerPlatformConnectors PR template): each returns what breaks it, so a failure names the place.
 */

type Json = Record<string, unknown>;

const SMALL_WORDS = new Set(['a', 'an', 'and', 'as', 'at', 'by', 'for', 'from', 'in', 'of', 'on', 'or', 'the', 'to', 'with']);
// Product names the publisher does not own may not be in the title; nor "API" or "Connector".
const FORBIDDEN_TITLE_WORDS = ['api', 'connector', 'azure', 'openai', 'microsoft', 'power automate', 'power apps', 'logic apps', 'copilot', 'dall-e'];
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const textOf = (value: unknown): string => (typeof value === 'string' ? value : '');

/** Every word capitalised, except short connecting words that are not first. */
export function isTitleCase(label: string): boolean {
  const words = label.split(/\s+/);
  return words.every((word, index) => (index > 0 && SMALL_WORDS.has(word)) || /^[A-Z0-9]/.test(word));
}

/** Only the first word capitalised (acronyms such as PNG and names of operations aside), no trailing period. */
export function isSentenceCase(summary: string): boolean {
  const [first = '', ...rest] = summary.split(/\s+/);
  return /^[A-Z]/.test(first) && rest.every((word) => !/^[A-Z][a-z]/.test(word)) && !summary.endsWith('.');
}

interface Place {
  readonly where: string;
  readonly schema: Json;
}

/** Every schema a maker sees a field of: parameters, their body properties, response properties, array items. */
function fieldSchemas(document: Json): Place[] {
  const places: Place[] = [];
  const visit = (schema: unknown, where: string) => {
    if (!isObject(schema) || '$ref' in schema) return;
    places.push({ where, schema });
    if (isObject(schema['properties'])) for (const [name, property] of Object.entries(schema['properties'])) visit(property, `${where}.${name}`);
    if (schema['items'] !== undefined) visit(schema['items'], `${where}[]`);
  };
  for (const { where, operation } of operations(document)) {
    for (const parameter of (operation['parameters'] as Json[] | undefined) ?? []) {
      const name = `${where} parameter ${String(parameter['name'])}`;
      places.push({ where: name, schema: parameter });
      if (isObject(parameter['schema']) && isObject(parameter['schema']['properties'])) {
        for (const [property, schema] of Object.entries(parameter['schema']['properties'])) visit(schema, `${name}.${property}`);
      }
    }
  }
  for (const [name, definition] of Object.entries(isObject(document['definitions']) ? document['definitions'] : {})) {
    if (isObject(definition) && isObject(definition['properties'])) {
      for (const [property, schema] of Object.entries(definition['properties'])) visit(schema, `definitions.${name}.${property}`);
    }
  }
  return places;
}

export function operations(document: Json): { where: string; path: string; method: string; operation: Json }[] {
  const paths = isObject(document['paths']) ? document['paths'] : {};
  return Object.entries(paths).flatMap(([path, item]) =>
    Object.entries(isObject(item) ? item : {})
      .filter(([method]) => HTTP_METHODS.has(method))
      .map(([method, operation]) => ({ where: `${method.toUpperCase()} ${path}`, path, method, operation: operation as Json })),
  );
}

export function connectorRuleViolations(document: Json): string[] {
  const problems: string[] = [];
  const info = isObject(document['info']) ? document['info'] : {};
  const title = textOf(info['title']);
  if (title.length === 0 || title.length > 30) problems.push(`info.title '${title}' must be 1-30 characters (it has ${title.length})`);
  for (const word of FORBIDDEN_TITLE_WORDS) if (title.toLowerCase().includes(word)) problems.push(`info.title '${title}' contains '${word}'`);
  const description = textOf(info['description']);
  if (description.length < 30 || description.length > 500) problems.push(`info.description must be 30-500 characters (it has ${description.length})`);
  const contact = isObject(info['contact']) ? info['contact'] : undefined;
  if (!contact || typeof contact['name'] !== 'string' || !(typeof contact['url'] === 'string' || typeof contact['email'] === 'string')) {
    problems.push('info.contact needs a name and a url or email');
  }
  const metadata = Array.isArray(document['x-ms-connector-metadata']) ? (document['x-ms-connector-metadata'] as Json[]) : [];
  for (const name of ['Website', 'Privacy policy', 'Categories']) {
    const entry = metadata.find((item) => item['propertyName'] === name);
    if (!entry || typeof entry['propertyValue'] !== 'string' || entry['propertyValue'] === '') problems.push(`x-ms-connector-metadata lacks ${name}`);
    else if (name !== 'Categories' && !URL.canParse(entry['propertyValue'])) problems.push(`x-ms-connector-metadata ${name} is not a URL`);
  }

  const ids = new Set<string>();
  for (const { where, operation } of operations(document)) {
    const id = textOf(operation['operationId']);
    if (!/^[A-Z][A-Za-z0-9]+$/.test(id)) problems.push(`${where}: operationId '${id}' is not PascalCase`);
    if (ids.has(id)) problems.push(`${where}: operationId '${id}' is used twice`);
    ids.add(id);
    const summary = textOf(operation['summary']);
    if (summary.length === 0 || summary.length > 80 || !isSentenceCase(summary)) problems.push(`${where}: summary '${summary}' must be sentence case, 1-80 characters, no period`);
    const text = textOf(operation['description']);
    if (!text.endsWith('.') || text === summary) problems.push(`${where}: description must end with a period and differ from the summary`);
    const responses = isObject(operation['responses']) ? operation['responses'] : {};
    const statuses = Object.keys(responses);
    if (statuses.includes('default')) problems.push(`${where}: declares a default response; declare each status`);
    if (!statuses.some((status) => /^2\d\d$/.test(status))) problems.push(`${where}: declares no 2xx response`);
    for (const [status, response] of Object.entries(responses)) {
      if (!isObject(response) || typeof response['description'] !== 'string') problems.push(`${where} ${status}: no description`);
      else if (/^[45]\d\d$/.test(status) && status !== '401' && !isObject(response['schema'])) problems.push(`${where} ${status}: no error schema`);
      else if (/^20[01]$/.test(status) && !isObject(response['schema'])) problems.push(`${where} ${status}: no response schema`);
    }
  }

  for (const { where, schema } of fieldSchemas(document)) {
    const summary = schema['x-ms-summary'];
    if (typeof summary !== 'string' || summary === '') problems.push(`${where}: no x-ms-summary`);
    else if (!isTitleCase(summary)) problems.push(`${where}: x-ms-summary '${summary}' is not Title Case`);
    if (typeof schema['description'] !== 'string' || schema['description'] === '') problems.push(`${where}: no description`);
    // Some clients send an internal parameter only when it is required and has a default; the
    // platform fills in the notification URL itself.
    if (schema['x-ms-visibility'] === 'internal' && schema['x-ms-notification-url'] !== true) {
      const required = schema['required'] === true || (schema['in'] === undefined ? undefined : schema['required']);
      if (schema['in'] !== undefined && (required !== true || schema['default'] === undefined)) problems.push(`${where}: internal but not required with a default`);
      if (schema['in'] === undefined && schema['default'] === undefined) problems.push(`${where}: internal property without a default`);
    }
  }
  return problems;
}
