import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface HostJson {
  logging?: { applicationInsights?: { samplingSettings?: { isEnabled?: boolean; excludedTypes?: string } } };
}

const hostJson = JSON.parse(readFileSync(join(__dirname, '..', '..', 'host.json'), 'utf8')) as HostJson;

describe('host.json telemetry', () => {
  // A `UsageNotRecorded` line is the last copy of a usage record the table did not take: a sampled-out
  // line would be spend nobody can bill. Requests and exceptions are what the portal's failure views count.
  it('never samples out traces, requests or exceptions', () => {
    const sampling = hostJson.logging?.applicationInsights?.samplingSettings;
    const unsampled = new Set((sampling?.excludedTypes ?? '').split(';').map((type) => type.trim()));
    expect(sampling?.isEnabled === false || ['Trace', 'Request', 'Exception'].every((type) => unsampled.has(type))).toBe(true);
  });
});
